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
/// one is told to close. With no connection attached for
/// <see cref="SessionSettings.ExpireAfter"/> it deletes its events and snapshots and stops.
/// </summary>
public sealed class SessionActor : ReceivePersistentActor, IWithTimers
{
    private const string ExpiryTimer = "expire";

    private readonly string _sessionId;
    private readonly SessionSettings _settings;
    private readonly Dictionary<string, SessionTopic> _topics = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();
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
        Recover<SnapshotOffer>(offer =>
        {
            if (offer.Snapshot is not SessionEvents.Snapshot s) return;
            _topics.Clear();
            foreach (var t in s.Topics) _topics[t.Topic] = t;
        });
        Recover<RecoveryCompleted>(_ => ScheduleExpiry());
        Active();
    }

    public static string PersistenceIdFor(string sessionId) => "session-" + sessionId;

    public override string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string sessionId, SessionSettings settings) =>
        Akka.Actor.Props.Create(() => new SessionActor(sessionId, settings));

    private void Active()
    {
        Command<SessionCommands.Attach>(a =>
        {
            Timers.Cancel(ExpiryTimer);
            if (_connection is not null && !_connection.Equals(a.Connection))
                _connection.Tell(new SessionCommands.TakenOver(_sessionId));
            _connection = a.Connection;
            Sender.Tell(new SessionCommands.Attached(_sessionId, Topics()));
        });
        Command<SessionCommands.Detach>(d =>
        {
            if (_connection is null || !_connection.Equals(d.Connection)) return; // an older, taken-over connection
            _connection = null;
            ScheduleExpiry();
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
        Command<Expire>(_ =>
        {
            if (_connection is not null) return;
            _log.Info("Session {0} expired: deleting its state", _sessionId);
            _messagesDeleted = _snapshotsDeleted = false;
            DeleteMessages(LastSequenceNr);
            DeleteSnapshots(new SnapshotSelectionCriteria(long.MaxValue));
            Become(Expiring);
        });
        Command<SaveSnapshotSuccess>(s =>
        {
            // The snapshot holds everything: older events and snapshots are not needed for recovery.
            DeleteMessages(s.Metadata.SequenceNr);
            DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1));
        });
        Command<SaveSnapshotFailure>(f => _log.Warning("Session {0}: snapshot failed: {1}", _sessionId, f.Cause.Message));
        Command<DeleteMessagesSuccess>(_ => { });
        Command<DeleteMessagesFailure>(f => _log.Warning("Session {0}: deleting events failed: {1}", _sessionId, f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => _log.Warning("Session {0}: deleting snapshots failed: {1}", _sessionId, f.Cause.Message));
        Command<Stop>(_ => Context.Stop(Self));
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
        Become(Active);
        Stash.UnstashAll();
        // Sharding buffers what arrives from now on and starts a fresh incarnation for it.
        Context.Parent.Tell(new Passivate(Stop.Instance));
    }

    private void DeleteFailed(Exception cause)
    {
        _log.Warning("Session {0}: deleting the expired session failed ({1}); retrying after the expiry time", _sessionId, cause.Message);
        Become(Active);
        Stash.UnstashAll();
        ScheduleExpiry();
    }

    private void PersistAndReply(object e)
    {
        var replyTo = Sender;
        Persist(e, persisted =>
        {
            Apply(persisted);
            replyTo.Tell(new SessionCommands.Done(_sessionId));
            if (_settings.SnapshotEvery > 0 && LastSequenceNr % _settings.SnapshotEvery == 0)
                SaveSnapshot(new SessionEvents.Snapshot(Topics()));
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

    private void ScheduleExpiry()
    {
        if (_connection is null) Timers.StartSingleTimer(ExpiryTimer, Expire.Instance, _settings.ExpireAfter);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _log.Warning("Session {0}: recovery failed (the session store is unavailable?): {1}", _sessionId, reason.Message);
        base.OnRecoveryFailure(reason, message);
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
