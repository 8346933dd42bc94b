namespace Broker.Core.Topics;

/// <summary>Marks messages routed to a topic's sharded actor (entity id = topic name).</summary>
public interface IWithTopic
{
    string Topic { get; }
}

/// <summary>Commands handled by the topic actor.</summary>
public static class TopicCommands
{
    /// <summary>
    /// A client publish. <paramref name="Data"/> is validated UTF-8 JSON. <paramref name="ClientId"/>
    /// and <paramref name="RequestId"/> identify the request for de-duplication of retries.
    /// </summary>
    public sealed record Publish(string Topic, byte[] Data, string? Key, string? ClientId, string? RequestId) : IWithTopic;

    /// <summary>Reply to <see cref="Publish"/>: the record is in the log at <paramref name="Pos"/>.</summary>
    public sealed record PublishAck(string Topic, string Pos);

    /// <summary>Reply to <see cref="Publish"/>: nothing was acknowledged; <paramref name="Code"/> is a protocol error code.</summary>
    public sealed record PublishRejected(string Topic, string Code, string Message);
}
