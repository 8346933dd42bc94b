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

/// <summary>
/// Routes <see cref="IWithTopic"/> settings messages to the topic's settings bucket (see
/// <see cref="TopicSettingsActor"/>): a stable hash of the topic name over <see cref="Buckets"/>
/// buckets. The count is part of where settings are stored: it never changes.
/// </summary>
public sealed class TopicSettingsMessageExtractor(int maxShards) : HashCodeMessageExtractor(maxShards)
{
    public const int Buckets = 64;

    public override string EntityId(object message) => message switch
    {
        IWithTopic t => BucketOf(t.Topic),
        _ => null!,
    };

    public static string BucketOf(string topic) => (Math.Abs(Akka.Util.MurmurHash.StringHash(topic) % Buckets)).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
