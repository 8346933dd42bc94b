using Akka;
using Akka.Actor;
using Akka.Event;
using Akka.Streams;
using Akka.Streams.Dsl;

namespace Broker.Core.Sessions;

/// <summary>
/// The cluster's session sweep (one per cluster: a cluster singleton): every
/// <c>sweep-interval</c> it lists the sessions in the session store (those with a live journal
/// row: a session keeps its last event's row when it snapshots) and sends each one
/// <see cref="SessionCommands.CheckExpiry"/>, at most <c>sweep-rate</c> per second. A session that
/// no connection has been attached to for <c>expire-after</c> (as its stored connection facts say)
/// deletes itself; the others leave memory again. So sessions expire even when nothing touches
/// them any more after their node restarted, passivated them or handed them off — what decides is
/// what is stored, not a timer that lived in a node's memory.
/// </summary>
public sealed class SessionSweeper : ReceiveActor, IWithTimers
{
    private const string SessionPrefix = "session-";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IMaterializer _materializer = Context.Materializer();
    private bool _sweeping;

    /// <param name="sessions">The session shard region.</param>
    /// <param name="persistenceIds">The persistence ids in the store (Akka.Persistence.Query's CurrentPersistenceIds).</param>
    public SessionSweeper(IActorRef sessions, Func<Source<string, NotUsed>> persistenceIds, SessionSettings settings)
    {
        Receive<Sweep>(_ =>
        {
            if (_sweeping) return;
            _sweeping = true;
            var started = DateTime.UtcNow;
            var rate = Math.Max(1, settings.SweepRate);
            // Off the actor's thread: the SQL read journal blocks while it is first created.
            // Each check loads a session from the store: a few at a time (each answers when it has
            // checked, or its ask times out when the store fails): sweep-parallelism at once, at most sweep-rate per second.
            Task.Run(() => persistenceIds()
                .Where(id => id.StartsWith(SessionPrefix, StringComparison.Ordinal))
                .Throttle(rate, TimeSpan.FromSeconds(1), rate, ThrottleMode.Shaping)
                .SelectAsync(settings.SweepParallelism, id => sessions
                    .Ask<SessionCommands.Checked>(new SessionCommands.CheckExpiry(id[SessionPrefix.Length..]), settings.RequestTimeout)
                    .ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default))
                .RunAggregate((Checked: 0, Failed: 0), (n, ok) => ok ? (n.Checked + 1, n.Failed) : (n.Checked, n.Failed + 1), _materializer))
                .PipeTo(Self, success: n => new Swept(n.Checked, n.Failed, DateTime.UtcNow - started), failure: e => new SweepFailed(e));
        });
        Receive<Swept>(s =>
        {
            _sweeping = false;
            if (s.Failed == 0) _log.Info("Session sweep: {0} stored sessions checked for expiry in {1:0.0} s", s.Checked, s.Took.TotalSeconds);
            else _log.Warning("Session sweep: {0} stored sessions checked for expiry in {1:0.0} s, {2} did not answer (the session store is unavailable?); they are checked again at the next sweep",
                s.Checked, s.Took.TotalSeconds, s.Failed);
        });
        Receive<SweepFailed>(f =>
        {
            _sweeping = false;
            _log.Warning("Session sweep failed (the session store is unavailable?): {0}; next sweep in {1}", f.Cause.GetBaseException().Message, settings.SweepInterval);
        });
        Interval = settings.SweepInterval;
    }

    private TimeSpan Interval { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef sessions, Func<Source<string, NotUsed>> persistenceIds, SessionSettings settings) =>
        Akka.Actor.Props.Create(() => new SessionSweeper(sessions, persistenceIds, settings));

    protected override void PreStart() => Timers.StartPeriodicTimer("sweep", Sweep.Instance, Interval, Interval);

    private sealed class Sweep
    {
        public static readonly Sweep Instance = new();
    }

    private sealed record Swept(int Checked, int Failed, TimeSpan Took);

    private sealed record SweepFailed(Exception Cause);
}
