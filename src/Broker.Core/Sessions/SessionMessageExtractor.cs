using Akka.Cluster.Sharding;

namespace Broker.Core.Sessions;

/// <summary>Routes <see cref="IWithSessionId"/> messages to the session's entity.</summary>
public sealed class SessionMessageExtractor(int maxShards) : HashCodeMessageExtractor(maxShards)
{
    public override string EntityId(object message) => message switch
    {
        IWithSessionId s => s.SessionId,
        _ => null!,
    };
}
