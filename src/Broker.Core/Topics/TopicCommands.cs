namespace Broker.Core.Topics;

/// <summary>Marks every broker message that may cross nodes (bound to <c>BrokerSerializer</c>).</summary>
public interface IBrokerMessage;

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
    /// <paramref name="DeadlineUnixMs"/> is when the client's node stops waiting for the answer (unix
    /// milliseconds, 0: no deadline): the writer never hands a publish to Kafka unless Kafka's answer
    /// can reach the client before it, so a publish the client was told <c>unavailable</c> for
    /// because it waited too long (e.g. buffered during a shard hand-off) is never written later.
    /// </summary>
    public sealed record Publish(string Topic, byte[] Data, string? Key, string? ClientId, string? RequestId, long DeadlineUnixMs = 0) : IWithTopic, IBrokerMessage;

    /// <summary>
    /// Reply to <see cref="Publish"/>: the record is in the log at <paramref name="Pos"/>.
    /// <paramref name="Duplicate"/> is true when this was a retry of a publish already written.
    /// </summary>
    public sealed record PublishAck(string Topic, string Pos, bool Duplicate = false) : IBrokerMessage;

    /// <summary>
    /// Reply to <see cref="Publish"/>: nothing was acknowledged; <paramref name="Code"/> is a protocol
    /// error code (<c>unavailable</c>, <c>conflict</c>, <c>forbidden</c>, <c>too_large</c>).
    /// </summary>
    public sealed record PublishRejected(string Topic, string Code, string Message) : IBrokerMessage;
}
