using Akka.Actor;
using Broker.Core.Sessions;
using Broker.Protocol;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Sessions;

/// <summary>The session actor's protocol on the in-memory journal (no cluster, no database).</summary>
public sealed class SessionActorTests() : Akka.TestKit.Xunit2.TestKit(
    """
    akka.test.single-expect-default = 10s # the machine is shared: the first persistence start can be slow
    akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
    akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
    akka.actor {
      serializers.broker = "Broker.Core.Serialization.BrokerSerializer, Broker.Core"
      serialization-bindings { "Broker.Core.Topics.IBrokerMessage, Broker.Core" = broker }
    }
    """)
{
    private static readonly SessionSettings Settings = TestDefaults.Sessions with { ExpireAfter = TimeSpan.FromHours(1), SnapshotEvery = 2 };

    private static string Pos(long next) => Position.Single(next).Encode();

    [Fact]
    public void Session_state_survives_a_restart_and_commits_only_move_forward()
    {
        var id = "s-" + Guid.NewGuid().ToString("N");
        var session = Sys.ActorOf(SessionActor.Props(id, Settings));
        session.Tell(new SessionCommands.Attach(id, TestActor));
        Assert.Empty(ExpectMsg<SessionCommands.Attached>().Topics);
        session.Tell(new SessionCommands.AddSubscription(id, "a", Pos(0)));
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.AddSubscription(id, "b", Pos(5)));
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.Commit(id, "a", Pos(3)));
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.Commit(id, "a", Pos(2))); // older: ignored
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.RemoveSubscription(id, "b"));
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.Commit(id, "b", Pos(6)));
        Assert.Equal("not_found", ExpectMsg<SessionCommands.Rejected>().Code);

        Watch(session);
        Sys.Stop(session);
        ExpectTerminated(session);

        var again = Sys.ActorOf(SessionActor.Props(id, Settings));
        again.Tell(new SessionCommands.Attach(id, TestActor));
        Assert.Equal([new SessionTopic("a", Pos(3))], ExpectMsg<SessionCommands.Attached>().Topics);
    }

    [Fact]
    public void Session_keeps_each_topics_key_filter_and_headers_option_across_commits_resubscribes_and_restarts()
    {
        var id = "s-" + Guid.NewGuid().ToString("N");
        var session = Sys.ActorOf(SessionActor.Props(id, Settings));
        session.Tell(new SessionCommands.Attach(id, TestActor));
        ExpectMsg<SessionCommands.Attached>();
        session.Tell(new SessionCommands.AddSubscription(id, "a", Pos(0), "k1", Headers: true));
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.AddSubscription(id, "b", Pos(0), Headers: true));
        ExpectMsg<SessionCommands.Done>(); // second event: a snapshot (SnapshotEvery = 2) holds both
        session.Tell(new SessionCommands.AddSubscription(id, "c", Pos(0)));
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.Commit(id, "a", Pos(4)));
        ExpectMsg<SessionCommands.Done>();
        // Subscribing again is idempotent: neither the filter nor the position changes.
        session.Tell(new SessionCommands.AddSubscription(id, "a", Pos(9), "other", Headers: false));
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.Commit(id, "b", Pos(2)));
        ExpectMsg<SessionCommands.Done>();

        SessionTopic[] expected = [new("a", Pos(4), "k1", true), new("b", Pos(2), null, true), new("c", Pos(0))];
        session.Tell(new SessionCommands.Attach(id, TestActor));
        Assert.Equal(expected, ExpectMsg<SessionCommands.Attached>().Topics.OrderBy(t => t.Topic));

        Watch(session);
        Sys.Stop(session);
        ExpectTerminated(session);

        // Recovered from the snapshot and the events after it.
        var again = Sys.ActorOf(SessionActor.Props(id, Settings));
        again.Tell(new SessionCommands.Attach(id, TestActor));
        Assert.Equal(expected, ExpectMsg<SessionCommands.Attached>().Topics.OrderBy(t => t.Topic));
    }

    [Fact]
    public void Session_attached_again_tells_the_older_connection_it_was_taken_over()
    {
        var id = "s-" + Guid.NewGuid().ToString("N");
        var older = CreateTestProbe();
        var session = Sys.ActorOf(SessionActor.Props(id, Settings));
        session.Tell(new SessionCommands.Attach(id, older.Ref));
        ExpectMsg<SessionCommands.Attached>();
        session.Tell(new SessionCommands.Attach(id, TestActor));
        older.ExpectMsg<SessionCommands.TakenOver>();
        ExpectMsg<SessionCommands.Attached>();
    }

    /// <summary>A clock the test moves by hand.</summary>
    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    /// <summary>Stands in for the shard: tells the probe what its session child asks of it (Passivate).</summary>
    private sealed class ShardStub : ReceiveActor
    {
        public ShardStub(Props session, IActorRef probe)
        {
            var child = Context.ActorOf(session, "session");
            Receive<Akka.Cluster.Sharding.Passivate>(p => probe.Tell(p));
            ReceiveAny(m => child.Forward(m));
        }
    }

    private (SessionSettings Settings, ManualClock Clock) ExpiringIn(TimeSpan expireAfter)
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        return (Settings with { ExpireAfter = expireAfter, PassivateAfter = TimeSpan.FromMinutes(5), Time = clock }, clock);
    }

    /// <summary>Stops a session the way a passivation or a hand-off does: its memory (and any timer) is gone.</summary>
    private void StopSession(IActorRef session)
    {
        Watch(session);
        Sys.Stop(session);
        ExpectTerminated(session);
    }

    /// <summary>A new incarnation checks its expiry; returns whether it is still there (it passivated) or deleted itself.</summary>
    private bool SurvivesCheck(string id, SessionSettings settings)
    {
        var shard = CreateTestProbe();
        var session = Sys.ActorOf(Props.Create(() => new ShardStub(SessionActor.Props(id, settings), shard.Ref)));
        session.Tell(new SessionCommands.CheckExpiry(id), shard.Ref);
        // Done either way (kept, or deleted): it answers and passivates. A session whose expiry was
        // already due when it recovered deletes itself and passivates before it reads the check, and
        // that Passivate travels through the stub: the two may arrive in either order.
        var answers = shard.ReceiveN(2);
        Assert.Contains(answers, m => m is SessionCommands.Checked);
        Assert.Contains(answers, m => m is Akka.Cluster.Sharding.Passivate);
        var connection = CreateTestProbe();
        session.Tell(new SessionCommands.Attach(id, connection.Ref), connection.Ref);
        var kept = connection.ExpectMsg<SessionCommands.Attached>().Topics.Count > 0;
        session.Tell(new SessionCommands.Detach(id, connection.Ref));
        session.Tell(new SessionCommands.RemoveSubscription(id, "none"), connection.Ref); // a round trip: the detach is stored
        connection.ExpectMsg<SessionCommands.Done>();
        StopSession(session);
        return kept;
    }

    [Fact]
    public void A_detached_session_that_left_memory_expires_from_its_stored_detach_time_when_the_sweep_wakes_it()
    {
        var id = "s-" + Guid.NewGuid().ToString("N");
        var (settings, clock) = ExpiringIn(TimeSpan.FromHours(1));
        var session = Sys.ActorOf(SessionActor.Props(id, settings));
        var connection = CreateTestProbe();
        session.Tell(new SessionCommands.Attach(id, connection.Ref));
        ExpectMsg<SessionCommands.Attached>();
        session.Tell(new SessionCommands.AddSubscription(id, "a", Pos(0)));
        ExpectMsg<SessionCommands.Done>();
        session.Tell(new SessionCommands.Detach(id, connection.Ref));
        session.Tell(new SessionCommands.Commit(id, "a", Pos(0))); // a round trip: the detach is stored
        ExpectMsg<SessionCommands.Done>();
        StopSession(session); // passivated, handed off, or its node restarted: no timer runs any more

        clock.Now += TimeSpan.FromMinutes(59);
        Assert.True(SurvivesCheck(id, settings)); // within expire-after of the stored detach (the check's own attach restarts the clock)
        clock.Now += TimeSpan.FromMinutes(61);
        Assert.False(SurvivesCheck(id, settings)); // an hour after the last detach: deleted
    }

    [Fact]
    public void A_session_stored_as_attached_whose_connection_died_with_its_node_starts_its_idle_time_when_it_finds_out()
    {
        var id = "s-" + Guid.NewGuid().ToString("N");
        var (settings, clock) = ExpiringIn(TimeSpan.FromHours(1));
        var connection = CreateTestProbe();
        var session = Sys.ActorOf(SessionActor.Props(id, settings));
        session.Tell(new SessionCommands.Attach(id, connection.Ref));
        ExpectMsg<SessionCommands.Attached>();
        session.Tell(new SessionCommands.AddSubscription(id, "a", Pos(0)));
        ExpectMsg<SessionCommands.Done>();
        // The session's memory and the connection go at once (both lived on a node that died): nobody detaches.
        StopSession(session);
        Watch(connection.Ref);
        connection.Ref.Tell(PoisonPill.Instance);
        ExpectTerminated(connection.Ref);

        // Days later the sweep wakes it: it watches the stored connection, finds it gone and stores
        // that it went away now. The first check finds it attached and does nothing; once the
        // connection is known gone, a check passivates it (not expired).
        clock.Now += TimeSpan.FromDays(3);
        var shard = CreateTestProbe();
        var woken = Sys.ActorOf(Props.Create(() => new ShardStub(SessionActor.Props(id, settings), shard.Ref)));
        var checker = CreateTestProbe();
        AwaitAssert(() =>
        {
            woken.Tell(new SessionCommands.CheckExpiry(id), checker.Ref);
            checker.ExpectMsg<SessionCommands.Checked>();
            shard.ExpectMsg<Akka.Cluster.Sharding.Passivate>(TimeSpan.FromMilliseconds(200));
        }, TimeSpan.FromSeconds(10));
        StopSession(woken);
        Assert.True(SurvivesCheck(id, settings));
        clock.Now += TimeSpan.FromMinutes(61);
        Assert.False(SurvivesCheck(id, settings));
    }

    [Fact]
    public void A_session_attached_again_after_a_restart_tells_the_connection_stored_as_attached_it_was_taken_over()
    {
        var id = "s-" + Guid.NewGuid().ToString("N");
        var older = CreateTestProbe();
        var session = Sys.ActorOf(SessionActor.Props(id, Settings));
        session.Tell(new SessionCommands.Attach(id, older.Ref));
        ExpectMsg<SessionCommands.Attached>();
        StopSession(session); // moved to another node: the new incarnation knows the connection from the store

        var moved = Sys.ActorOf(SessionActor.Props(id, Settings));
        moved.Tell(new SessionCommands.Attach(id, TestActor));
        older.ExpectMsg<SessionCommands.TakenOver>();
        ExpectMsg<SessionCommands.Attached>();
    }

    [Fact]
    public void A_detached_session_leaves_memory_after_passivate_after_and_an_attached_one_does_not()
    {
        var id = "s-" + Guid.NewGuid().ToString("N");
        var settings = Settings with { PassivateAfter = TimeSpan.FromMilliseconds(300) };
        var shard = CreateTestProbe();
        var session = Sys.ActorOf(Props.Create(() => new ShardStub(SessionActor.Props(id, settings), shard.Ref)));
        var connection = CreateTestProbe();
        session.Tell(new SessionCommands.Attach(id, connection.Ref), connection.Ref);
        connection.ExpectMsg<SessionCommands.Attached>();
        session.Tell(new SessionCommands.AddSubscription(id, "a", Pos(0)), connection.Ref);
        connection.ExpectMsg<SessionCommands.Done>();
        shard.ExpectNoMsg(TimeSpan.FromSeconds(1)); // attached: stays, however idle
        session.Tell(new SessionCommands.Detach(id, connection.Ref));
        shard.ExpectMsg<Akka.Cluster.Sharding.Passivate>(TimeSpan.FromSeconds(5));
    }
}
