using Akka.Cluster.Sharding;

namespace Broker.Core.Topics;

/// <summary>Routes <see cref="IWithTopic"/> messages to the topic's entity; used with or without a cluster.</summary>
public sealed class TopicMessageExtractor(int maxShards) : HashCodeMessageExtractor(maxShards)
{
    public override string EntityId(object message) => message switch
    {
        IWithTopic t => t.Topic,
        _ => null!,
    };
}
