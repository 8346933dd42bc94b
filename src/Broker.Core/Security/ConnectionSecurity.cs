using Broker.Core.Connections;
using Broker.Protocol;

namespace Broker.Core.Security;

/// <summary>What an intercepted request did to a connection's authentication.</summary>
public enum AuthStep
{
    /// <summary>Answered (or refused) here; nothing more to do.</summary>
    Handled,
    /// <summary>The connection's first token was accepted: its durable session may attach now.</summary>
    Authenticated,
    /// <summary>The token was replaced: subscriptions must be checked against the new grants.</summary>
    Refreshed,
}

/// <summary>
/// The security state of one WebSocket connection: who it is (anonymous, or the subject of its
/// token), the auth flow of docs/protocol.md (first-frame <c>auth</c> within
/// <c>first-frame-timeout</c>, <c>authed</c>, in-band refresh, <c>token_expiring</c> once
/// <c>refresh-notice</c> before <c>exp</c>, 1008 <c>token_expired</c>), the permission and rate
/// checks of its requests, and the admission leases it holds. Timers only queue frames or request
/// the close; every other call comes from the connection's single request owner.
/// </summary>
public sealed class ConnectionSecurity : IDisposable
{
    private readonly NodeSecurity _node;
    private readonly Leases _leases;
    private readonly ConnectionQuota _quota;
    private readonly bool _wantsSession;
    private readonly string? _upgradeProblem;
    private OutboundQueue? _outbound;
    private ITimer? _deadline;
    private ITimer? _notice;
    private ITimer? _expiry;
    private volatile ClientIdentity _identity;
    private volatile bool _ready;

    /// <param name="identity">The identity from the upgrade request (anonymous when it carried no token).</param>
    /// <param name="upgradeProblem">Why the token of the upgrade request was refused (the connection is closed with 1008 at once), or null.</param>
    /// <param name="awaitFirstFrame">Auth is required and the upgrade carried no token: the first frame must be <c>auth</c>.</param>
    /// <param name="leases">Admission permits held for the life of the connection.</param>
    /// <param name="wantsSession">The client asked for a durable session (counted per subject).</param>
    public ConnectionSecurity(NodeSecurity node, ClientIdentity identity, string? upgradeProblem, bool awaitFirstFrame, Leases leases, bool wantsSession)
    {
        _node = node;
        _identity = identity;
        _upgradeProblem = upgradeProblem;
        _leases = leases;
        _wantsSession = wantsSession;
        _quota = node.Quotas.ForConnection();
        _ready = upgradeProblem is null && !awaitFirstFrame;
    }

    public ClientIdentity Identity => _identity;

    /// <summary>False until the connection may act: it awaits its first-frame <c>auth</c>, or its token was refused.</summary>
    public bool Ready => _ready;

    /// <summary>A client-chosen id (<c>?client=</c>, <c>?session=</c>) in the subject's own space.</summary>
    public string Scope(string id) => _identity.Scope(id);

    /// <summary>Starts the flow on the connection's outbound queue: refuses a bad upgrade token, or arms the first-frame deadline or the expiry timers.</summary>
    public void Attach(OutboundQueue outbound)
    {
        _outbound = outbound;
        if (_upgradeProblem is not null)
        {
            Refuse(null, _upgradeProblem);
            return;
        }
        if (!_ready)
            _deadline = TimeProvider.System.CreateTimer(_ => outbound.RequestClose(CloseCodes.PolicyViolation, CloseReasons.AuthTimeout), null, _node.Auth.FirstFrameTimeout, Timeout.InfiniteTimeSpan);
        else
            ArmExpiry();
    }

    /// <summary>
    /// Handles <c>auth</c> frames, and every frame while the connection awaits its first one
    /// (anything but <c>auth</c> closes it with 1008 <c>unauthorized</c>). Null: not intercepted,
    /// handle the request as usual.
    /// </summary>
    public async ValueTask<AuthStep?> InterceptAsync(DecodeResult decoded)
    {
        if (decoded.Request is AuthRequest auth) return await AuthenticateAsync(auth).ConfigureAwait(false);
        if (_ready) return null;
        if (_outbound?.CloseRequested is null) Refuse(decoded.Id, "authenticate first: the first frame must be {\"type\":\"auth\",\"token\":\"…\"}");
        return AuthStep.Handled;
    }

    private async Task<AuthStep> AuthenticateAsync(AuthRequest auth)
    {
        if (_node.Validator is null)
        {
            Reply(ServerFrames.Error(auth.Id, ErrorCodes.BadRequest, "authentication is off on this broker (broker.auth.mode = off): no token is needed"));
            return AuthStep.Handled;
        }
        var result = await _node.Validator.ValidateAsync(auth.Token, _identity.RemoteAddress).ConfigureAwait(false);
        if (!result.Valid)
        {
            Refuse(auth.Id, result.Problem!);
            return AuthStep.Handled;
        }
        var identity = result.Identity!;
        var first = !_identity.IsAuthenticated;
        if (!first && identity.Subject != _identity.Subject)
        {
            Refuse(auth.Id, $"a refreshed token must have the same subject ({_identity.Subject}), not {identity.Subject}: reconnect to change identity");
            return AuthStep.Handled;
        }
        if (first)
        {
            // The subject is known only now: its connection cap and session count apply from here.
            if (!_node.Admission.AdmitSubject(_leases, identity.Subject!))
            {
                TooMany(auth.Id, _node.Admission.SubjectCapMessage(identity.Subject!));
                return AuthStep.Handled;
            }
            if (_wantsSession && !_ready)
            {
                if (_node.Quotas.Session(identity.Partition, out var refused) is { } lease) _leases.Add(lease);
                else
                {
                    TooMany(auth.Id, refused!.Value.Message);
                    return AuthStep.Handled;
                }
            }
        }
        _deadline?.Dispose();
        _identity = identity;
        var wasReady = _ready;
        _ready = true;
        ArmExpiry();
        Reply(ServerFrames.Authed(auth.Id, identity.Subject!, identity.Expires?.ToUnixTimeSeconds()));
        return !wasReady ? AuthStep.Authenticated : AuthStep.Refreshed;
    }

    /// <summary>Whether the connection may publish <paramref name="bytes"/> to <paramref name="topic"/> now (permission, creation, rates).</summary>
    public async ValueTask<ProtocolError?> CheckPublishAsync(string topic, int bytes) =>
        await _node.AuthorizeAsync(_identity, TopicAction.Publish, topic).ConfigureAwait(false) ?? _quota.Publish(_identity.Partition, bytes);

    /// <summary>Whether the connection may subscribe to <paramref name="topic"/>; a restored session subscription is re-checked but not rate limited.</summary>
    public async ValueTask<ProtocolError?> CheckSubscribeAsync(string topic, bool restored) =>
        await _node.AuthorizeAsync(_identity, TopicAction.Subscribe, topic).ConfigureAwait(false) ?? (restored ? null : _quota.Subscribe());

    /// <summary>Whether the connection may still read <paramref name="topic"/> (commit, and subscriptions after a refresh).</summary>
    public ProtocolError? CheckRead(string topic) => _node.Access.Check(_identity, TopicAction.Subscribe, topic);

    private void ArmExpiry()
    {
        _notice?.Dispose();
        _expiry?.Dispose();
        if (_identity.Expires is not { } exp || _outbound is not { } outbound) return;
        var now = TimeProvider.System.GetUtcNow();
        var closeAt = exp + _node.Auth.ClockSkew;
        var noticeIn = exp - _node.Auth.RefreshNotice - now;
        var seconds = exp.ToUnixTimeSeconds();
        _notice = TimeProvider.System.CreateTimer(_ => outbound.EnqueueReply(ServerFrames.TokenExpiring(seconds)), null,
            noticeIn > TimeSpan.Zero ? noticeIn : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        var closeIn = closeAt - now;
        _expiry = TimeProvider.System.CreateTimer(_ => outbound.RequestClose(CloseCodes.PolicyViolation, CloseReasons.TokenExpired), null,
            closeIn > TimeSpan.Zero ? closeIn : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    private void Refuse(string? id, string problem)
    {
        Reply(ServerFrames.Error(id, ErrorCodes.Unauthorized, problem));
        _ready = false;
        _outbound?.RequestCloseAfterQueued(CloseCodes.PolicyViolation, CloseReasons.Unauthorized);
    }

    private void TooMany(string? id, string problem)
    {
        Reply(ServerFrames.Error(id, new ProtocolError(ErrorCodes.RateLimited, problem, (long)_node.Admission.RetryAfter.TotalMilliseconds)));
        _ready = false;
        _outbound?.RequestCloseAfterQueued(CloseCodes.TryAgainLater, CloseReasons.TooManyConnections);
    }

    private void Reply(byte[] frame) => _outbound?.EnqueueReply(frame);

    public void Dispose()
    {
        _deadline?.Dispose();
        _notice?.Dispose();
        _expiry?.Dispose();
        _quota.Dispose();
        _leases.Dispose();
    }
}
