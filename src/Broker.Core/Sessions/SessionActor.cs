using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using Broker.Protocol;

namespace Broker.Core.Sessions;

/// <summary>
/// The sharded, persistent actor of one durable session (persistence id <c>session-&lt;id&gt;</c>):
/// the session's topics and, per topic, the position to resume after (the last commit, or where
/// the subscription started) and the options it was subscribed with (key filter, headers). It
/// knows the connection attached to it: a newer connection takes the session over and the older
/// one is told to close.
/// <para>
/// Expiry is driven by what is stored, so it survives passivation, hand-offs and restarts of every
/// node: the session stores when a connection attached (with the connection's endpoint) and when
/// it went away. With no connection attached it leaves memory after <c>passivate-after</c>; it
/// expires (deletes its events and snapshots) once no connection was attached for
/// <c>expire-after</c> — by its own timer while it runs, or when the node's session sweep
/// (<see cref="SessionSweeper"/>) wakes it with <see cref="SessionCommands.CheckExpiry"/>. A
/// session that starts and finds a connection stored as attached watches that connection's
/// endpoint: if it is gone (its node died with it, or it closed while the session was moving) the
/// session stores that it went away now.
/// </para>
/// </summary>
public sealed class SessionActor : ReceivePersistentActor, IWithTimers
{
    private const string ExpiryTimer = "expire";

    private readonly string _sessionId;
    private readonly SessionSettings _settings;
    private readonly Dictionary<string, SessionTopic> _topics = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    /// <summary>The stored connection fact (null: none stored, e.g. a new session).</summary>
    private SessionAttachment? _attachment;
    /// <summary>The connection attached as far as this incarnation knows (watched).</summary>
    private IActorRef? _connection;
    private bool _messagesDeleted, _snapshotsDeleted;

    public SessionActor(string sessionId, SessionSettings settings)
    {
        _sessionId = sessionId;
        _settings = settings;
        PersistenceId = PersistenceIdFor(sessionId);

        Recover<SessionEvents.Subscribed>(Apply);
        Recover<SessionEvents.Unsubscribed>(Apply);
        Recover<SessionEvents.Committed>(Apply);
        Recover<SessionEvents.ConnectionAttached>(Apply);
        Recover<SessionEvents.ConnectionDetached>(Apply);
        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is not SessionEvents.Snapshot s) return;
            _topics.Clear();
            foreach (var t in s.Topics) _topics[t.Topic] = t;
            _attachment = s.Attachment;
        });
        Recover<RecoveryCompleted>(_ => Recovered());
        Active();
    }

    public static string PersistenceIdFor(string sessionId) => "session-" + sessionId;

    public override string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string sessionId, SessionSettings settings) =>
        Akka.Actor.Props.Create(() => new SessionActor(sessionId, settings));

    private long Now => _settings.Time.GetUtcNow().ToUnixTimeMilliseconds();

    private bool HasState => _topics.Count > 0 || _attachment is not null;

    /// <summary>
    /// After recovery: a connection stored as attached is watched (if it is gone, Terminated says so
    /// and it is stored as gone); a session with state but no stored connection fact (stored before
    /// they existed) starts its idle time now; an idle one schedules its expiry.
    /// </summary>
    private void Recovered()
    {
        if (_attachment is { Endpoint: { } endpoint })
        {
            _connection = ResolveEndpoint(endpoint);
            Context.Watch(_connection);
            return;
        }
        if (_attachment is null && _topics.Count > 0)
        {
            Persist(new SessionEvents.ConnectionDetached(Now), e =>
            {
                Apply(e);
                Idle();
            });
            return;
        }
        Idle();
    }

    private IActorRef ResolveEndpoint(string path) => ((ExtendedActorSystem)Context.System).Provider.ResolveActorRef(path);

    private void Active()
    {
        Command<SessionCommands.Attach>(a =>
        {
            Timers.Cancel(ExpiryTimer);
            Context.SetReceiveTimeout(null);
            if (_connection is not null && !_connection.Equals(a.Connection))
            {
                _connection.Tell(new SessionCommands.TakenOver(_sessionId));
                Context.Unwatch(_connection);
            }
            _connection = a.Connection;
            Context.Watch(a.Connection);
            var replyTo = Sender;
            PersistWithSnapshot(new SessionEvents.ConnectionAttached(Akka.Serialization.Serialization.SerializedActorPath(a.Connection), Now),
                () => replyTo.Tell(new SessionCommands.Attached(_sessionId, Topics())));
        });
        Command<SessionCommands.Detach>(d =>
        {
            if (_connection is not null && !_connection.Equals(d.Connection)) return; // an older, taken-over connection
            if (_connection is null && _attachment is not { Endpoint: not null }) return; // nothing attached: nothing changes
            ConnectionGone();
        });
        Command<Terminated>(t =>
        {
            if (_connection is null || !_connection.Equals(t.ActorRef)) return;
            ConnectionGone(); // the connection's endpoint (or its node) died without detaching
        });
        Command<SessionCommands.AddSubscription>(s =>
        {
            if (_topics.ContainsKey(s.Topic))
            {
                Sender.Tell(new SessionCommands.Done(_sessionId));
                return;
            }
            PersistAndReply(new SessionEvents.Subscribed(s.Topic, s.Pos, s.Key, s.Headers));
        });
        Command<SessionCommands.RemoveSubscription>(r =>
        {
            if (!_topics.ContainsKey(r.Topic))
            {
                Sender.Tell(new SessionCommands.Done(_sessionId));
                return;
            }
            PersistAndReply(new SessionEvents.Unsubscribed(r.Topic));
        });
        Command<SessionCommands.Commit>(c =>
        {
            if (!_topics.ContainsKey(c.Topic))
            {
                Sender.Tell(new SessionCommands.Rejected(_sessionId, ErrorCodes.NotFound, $"the session is not subscribed to {c.Topic}"));
                return;
            }
            // Requests of a connection are handled concurrently, so commits may arrive out of order:
            // a commit at or before the stored position says nothing new and is not persisted.
            var stored = _topics[c.Topic].Pos;
            if (!IsAfter(c.Pos, stored))
            {
                Sender.Tell(new SessionCommands.Done(_sessionId));
                return;
            }
            PersistAndReply(new SessionEvents.Committed(c.Topic, Merged(c.Pos, stored)));
        });
        Command<SessionCommands.CheckExpiry>(_ =>
        {
            Sender.Tell(new SessionCommands.Checked(_sessionId));
            if (_connection is not null) return;
            if (IsExpired()) StartExpiry();
            else Passivate(); // woken only to check: leave memory again
        });
        Command<Expire>(_ =>
        {
            if (_connection is not null || !IsExpired()) return;
            StartExpiry();
        });
        Command<ReceiveTimeout>(_ =>
        {
            if (_connection is null) Passivate();
        });
        Command<SaveSnapshotSuccess>(s =>
        {
            // The snapshot holds everything: older events and snapshots are not needed for recovery.
            // The last event's row stays: the session sweep finds stored sessions by their live
            // journal rows, and one whose every row were deleted would never be checked for expiry.
            DeleteMessages(s.Metadata.SequenceNr - 1);
            DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1));
        });
        Command<SaveSnapshotFailure>(f => _log.Warning("Session {0}: snapshot failed: {1}", _sessionId, f.Cause.Message));
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(f => _log.Warning("Session {0}: deleting events failed: {1}", _sessionId, f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => _log.Warning("Session {0}: deleting snapshots failed: {1}", _sessionId, f.Cause.Message));
        Command<Stop>(_ => Context.Stop(Self));
    }

    /// <summary>The attached connection is gone: store when, start the expiry clock.</summary>
    private void ConnectionGone()
    {
        if (_connection is not null) Context.Unwatch(_connection);
        _connection = null;
        PersistWithSnapshot(new SessionEvents.ConnectionDetached(Now), Idle);
    }

    /// <summary>Detached: leave memory after passivate-after, expire at idle time + expire-after (whichever comes first).</summary>
    private void Idle()
    {
        if (_connection is not null) return;
        if (!HasState)
        {
            // Nothing stored (a session being created, or one already expired): leave memory if
            // nothing comes. A sweep's CheckExpiry passivates it at once.
            Context.SetReceiveTimeout(_settings.PassivateAfter);
            return;
        }
        var due = TimeSpan.FromMilliseconds(IdleSince() + (long)_settings.ExpireAfter.TotalMilliseconds - Now);
        if (due <= TimeSpan.Zero)
        {
            StartExpiry();
            return;
        }
        if (due < _settings.PassivateAfter) Timers.StartSingleTimer(ExpiryTimer, Expire.Instance, due);
        Context.SetReceiveTimeout(_settings.PassivateAfter);
    }

    private long IdleSince() => _attachment is { Endpoint: null } a ? a.AtUnixMs : Now;

    private bool IsExpired() => HasState && _attachment is not { Endpoint: not null } && IdleSince() + (long)_settings.ExpireAfter.TotalMilliseconds <= Now;

    private void Passivate()
    {
        Context.SetReceiveTimeout(null);
        // Sharding buffers what arrives from now on and starts a fresh incarnation for it.
        Context.Parent.Tell(new Passivate(Stop.Instance));
    }

    private void StartExpiry()
    {
        _log.Info("Session {0} expired: deleting its state", _sessionId);
        Timers.Cancel(ExpiryTimer);
        Context.SetReceiveTimeout(null);
        _messagesDeleted = _snapshotsDeleted = false;
        DeleteMessages(LastSequenceNr);
        DeleteSnapshots(new SnapshotSelectionCriteria(long.MaxValue));
        Become(Expiring);
    }

    /// <summary>Deleting the session's state; commands wait until it is done.</summary>
    private void Expiring()
    {
        Command<DeleteMessagesSuccess>(d =>
        {
            if (d.ToSequenceNr >= LastSequenceNr) _messagesDeleted = true;
            Expired();
        });
        Command<DeleteSnapshotsSuccess>(d =>
        {
            if (d.Criteria.MaxSequenceNr == long.MaxValue) _snapshotsDeleted = true;
            Expired();
        });
        Command<DeleteMessagesFailure>(f => DeleteFailed(f.Cause));
        Command<DeleteSnapshotsFailure>(f => DeleteFailed(f.Cause));
        Command<SaveSnapshotSuccess>(_ => { });
        Command<SaveSnapshotFailure>(_ => { });
        CommandAny(_ => Stash.Stash());
    }

    private void Expired()
    {
        if (!_messagesDeleted || !_snapshotsDeleted) return;
        _topics.Clear();
        _attachment = null;
        Become(Active);
        Stash.UnstashAll();
        Passivate();
    }

    private void DeleteFailed(Exception cause)
    {
        _log.Warning("Session {0}: deleting the expired session failed ({1}); the next check retries", _sessionId, cause.Message);
        Become(Active);
        Stash.UnstashAll();
        Context.SetReceiveTimeout(_settings.PassivateAfter);
    }

    private void PersistAndReply(object e)
    {
        var replyTo = Sender;
        PersistWithSnapshot(e, () => replyTo.Tell(new SessionCommands.Done(_sessionId)));
    }

    private void PersistWithSnapshot(object e, Action then)
    {
        Persist(e, persisted =>
        {
            Apply(persisted);
            then();
            if (_settings.SnapshotEvery > 0 && LastSequenceNr % _settings.SnapshotEvery == 0)
                SaveSnapshot(new SessionEvents.Snapshot(Topics(), _attachment));
        });
    }

    private void Apply(object e)
    {
        switch (e)
        {
            case SessionEvents.Subscribed s: _topics[s.Topic] = new SessionTopic(s.Topic, s.Pos, s.Key, s.Headers); break;
            case SessionEvents.Unsubscribed u: _topics.Remove(u.Topic); break;
            // A commit moves only the position: the key filter and headers option stay.
            case SessionEvents.Committed c:
                _topics[c.Topic] = _topics.TryGetValue(c.Topic, out var t) ? t with { Pos = c.Pos } : new SessionTopic(c.Topic, c.Pos);
                break;
            case SessionEvents.ConnectionAttached a: _attachment = new SessionAttachment(a.Endpoint, a.AtUnixMs); break;
            case SessionEvents.ConnectionDetached d: _attachment = new SessionAttachment(null, d.AtUnixMs); break;
        }
    }

    /// <summary>True unless <paramref name="pos"/> is nowhere after <paramref name="stored"/> (a missing partition counts as 0).</summary>
    internal static bool IsAfter(string pos, string stored)
    {
        if (!Position.TryParse(pos, out var p) || !Position.TryParse(stored, out var s)) return true;
        for (var i = 0; i < p.PartitionCount; i++)
        {
            if (p.NextOffset(i) > (i < s.PartitionCount ? s.NextOffset(i) : 0)) return true;
        }
        return false;
    }

    /// <summary>
    /// What a commit of <paramref name="pos"/> leaves stored: with several partitions, commits that
    /// arrive out of order may each be ahead in some partition; the client processed everything
    /// before either, so the partition-wise maximum is kept.
    /// </summary>
    internal static string Merged(string pos, string stored) =>
        Position.TryParse(pos, out var p) && Position.TryParse(stored, out var s) ? Position.Max(p, s).Encode() : pos;

    private List<SessionTopic> Topics() => [.. _topics.Values];

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _log.Warning("Session {0}: recovery failed (the session store is unavailable?): {1}", _sessionId, reason.Message);
        base.OnRecoveryFailure(reason, message);
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        _log.Warning("Session {0}: storing {1} failed (the session store is unavailable?): {2}", _sessionId, @event.GetType().Name, cause.Message);
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    private sealed class Expire
    {
        public static readonly Expire Instance = new();
    }

    private sealed class Stop
    {
        public static readonly Stop Instance = new();
    }
}
