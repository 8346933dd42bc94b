using Akka.Actor;
using Broker.Protocol;

namespace Broker.Core.Sessions;

/// <summary>
/// A connection's line to its durable session (a sharded persistent actor, on any node): attach,
/// the changes that must be stored before the client hears about them, and detach. Each call
/// answers null once the session stored it, or the error to send to the client.
/// </summary>
public sealed class SessionLink
{
    private readonly string _sessionId;
    private readonly IActorRef _sessions;
    private readonly ActorSystem _system;
    private readonly SessionSettings _settings;
    private readonly Action<int, string> _close;
    private IActorRef? _endpoint;

    /// <param name="close">Closes the connection (called when a newer connection takes the session over).</param>
    public SessionLink(string sessionId, IActorRef sessions, ActorSystem system, SessionSettings settings, Action<int, string> close)
    {
        _sessionId = sessionId;
        _sessions = sessions;
        _system = system;
        _settings = settings;
        _close = close;
    }

    public string SessionId => _sessionId;

    /// <summary>
    /// Attaches the connection (a connection attached before is closed by the session) and returns
    /// the session's topics; null when the session store did not answer.
    /// </summary>
    public async Task<IReadOnlyList<SessionTopic>?> AttachAsync()
    {
        // An attach that timed out may still reach the session later: its endpoint goes first, so
        // that this attempt's endpoint is never taken for a newer connection's and closed.
        if (_endpoint is not null) _system.Stop(_endpoint);
        _endpoint = _system.ActorOf(SessionEndpoint.Props(_close));
        try
        {
            var attached = await _sessions.Ask<SessionCommands.Attached>(new SessionCommands.Attach(_sessionId, _endpoint), _settings.RequestTimeout).ConfigureAwait(false);
            return attached.Topics;
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            return null;
        }
    }

    public Task<ProtocolError?> AddSubscriptionAsync(string topic, string pos, string? key, bool headers) =>
        AskAsync(new SessionCommands.AddSubscription(_sessionId, topic, pos, key, headers));

    public Task<ProtocolError?> RemoveSubscriptionAsync(string topic) => AskAsync(new SessionCommands.RemoveSubscription(_sessionId, topic));

    public Task<ProtocolError?> CommitAsync(string topic, string pos) => AskAsync(new SessionCommands.Commit(_sessionId, topic, pos));

    private async Task<ProtocolError?> AskAsync(IWithSessionId command)
    {
        object reply;
        try
        {
            reply = await _sessions.Ask<object>(command, _settings.RequestTimeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            return new ProtocolError(ErrorCodes.Unavailable, "the session store is unavailable; retry");
        }
        return reply switch
        {
            SessionCommands.Done => null,
            SessionCommands.Rejected r => new ProtocolError(r.Code, r.Message),
            _ => new ProtocolError(ErrorCodes.Internal, "unexpected reply from the session"),
        };
    }

    /// <summary>The connection closed: the session starts its expiry clock.</summary>
    public void Detach()
    {
        if (_endpoint is null) return;
        _sessions.Tell(new SessionCommands.Detach(_sessionId, _endpoint));
        _system.Stop(_endpoint);
        _endpoint = null;
    }
}
