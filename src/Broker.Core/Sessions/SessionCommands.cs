using Akka.Actor;
using Broker.Core.Topics;

namespace Broker.Core.Sessions;

/// <summary>Marks messages routed to a durable session's sharded actor (entity id = session id).</summary>
public interface IWithSessionId
{
    string SessionId { get; }
}

/// <summary>
/// A topic of a session, the position to resume it from (exclusive, like <c>since</c>) and the
/// options it was subscribed with: the key filter (<c>key</c>; null: every message) and whether
/// messages carry the Kafka headers (<c>headers</c>).
/// </summary>
public sealed record SessionTopic(string Topic, string Pos, string? Key = null, bool Headers = false);

/// <summary>Commands handled by the session actor, and its replies.</summary>
public static class SessionCommands
{
    /// <summary>
    /// A connection with this session id opened. The session replies <see cref="Attached"/> with its
    /// topics; a connection attached before is told <see cref="TakenOver"/>.
    /// </summary>
    public sealed record Attach(string SessionId, IActorRef Connection) : IWithSessionId, IBrokerMessage;

    /// <summary>Reply to <see cref="Attach"/>: the topics to resubscribe, each from its resume position.</summary>
    public sealed record Attached(string SessionId, IReadOnlyList<SessionTopic> Topics) : IBrokerMessage;

    /// <summary>The connection closed; the session expires after its idle time unless a connection attaches again.</summary>
    public sealed record Detach(string SessionId, IActorRef Connection) : IWithSessionId, IBrokerMessage;

    /// <summary>
    /// The connection subscribed to <paramref name="Topic"/> starting after <paramref name="Pos"/>, with
    /// the key filter <paramref name="Key"/> and the <paramref name="Headers"/> option: persisted before
    /// <c>subscribed</c> is sent. A topic the session has already keeps what was stored (subscribing is idempotent).
    /// </summary>
    public sealed record AddSubscription(string SessionId, string Topic, string Pos, string? Key = null, bool Headers = false) : IWithSessionId, IBrokerMessage;

    /// <summary>The connection unsubscribed: persisted before <c>unsubscribed</c> is sent.</summary>
    public sealed record RemoveSubscription(string SessionId, string Topic) : IWithSessionId, IBrokerMessage;

    /// <summary>The client processed everything of <paramref name="Topic"/> up to <paramref name="Pos"/>.</summary>
    public sealed record Commit(string SessionId, string Topic, string Pos) : IWithSessionId, IBrokerMessage;

    /// <summary>Reply: the change is persisted.</summary>
    public sealed record Done(string SessionId) : IBrokerMessage;

    /// <summary>Reply: nothing changed; <paramref name="Code"/> is a protocol error code.</summary>
    public sealed record Rejected(string SessionId, string Code, string Message) : IBrokerMessage;

    /// <summary>To a connection: a newer connection attached to its session; it closes.</summary>
    public sealed record TakenOver(string SessionId) : IBrokerMessage;

    /// <summary>
    /// From the node's session sweep: a stored session should check whether it has expired (no
    /// connection attached for expire-after, as far as its store says) and delete itself if so.
    /// Starts the session if it does not run; one with nothing to do leaves memory again at once.
    /// </summary>
    public sealed record CheckExpiry(string SessionId) : IWithSessionId, IBrokerMessage;

    /// <summary>Reply to <see cref="CheckExpiry"/>: the session has checked (and deleted itself if it had expired).</summary>
    public sealed record Checked(string SessionId) : IBrokerMessage;
}

/// <summary>What the session actor persists.</summary>
public static class SessionEvents
{
    /// <summary>A topic was added, with its key filter and headers option (recorded before they existed: null and false).</summary>
    public sealed record Subscribed(string Topic, string Pos, string? Key = null, bool Headers = false) : IBrokerMessage;

    public sealed record Unsubscribed(string Topic) : IBrokerMessage;

    /// <summary>The resume position of a topic moved; its key filter and headers option stay.</summary>
    public sealed record Committed(string Topic, string Pos) : IBrokerMessage;

    /// <summary>
    /// A connection attached (its endpoint actor's path, unix ms). Stored so that a session that
    /// restarts (another node, passivation, a restart of every node) knows whether a connection was
    /// attached, can watch whether it still is, and measures its idle time from what is stored.
    /// </summary>
    public sealed record ConnectionAttached(string Endpoint, long AtUnixMs) : IBrokerMessage;

    /// <summary>The attached connection went away (closed, or its endpoint or node died) at this time (unix ms): the expiry clock starts.</summary>
    public sealed record ConnectionDetached(long AtUnixMs) : IBrokerMessage;

    /// <summary>
    /// The whole state, saved every N events. <paramref name="Attachment"/>: the last connection
    /// fact (null in snapshots saved before connections were stored).
    /// </summary>
    public sealed record Snapshot(IReadOnlyList<SessionTopic> Topics, SessionAttachment? Attachment = null) : IBrokerMessage;
}

/// <summary>
/// The stored connection state of a session: attached to <paramref name="Endpoint"/> since
/// <paramref name="AtUnixMs"/>, or (Endpoint null) without a connection since then.
/// </summary>
public sealed record SessionAttachment(string? Endpoint, long AtUnixMs);
