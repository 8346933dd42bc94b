using Akka.Actor;
using Broker.Core.Sessions;
using Broker.Protocol;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Sessions;

/// <summary>The session actor's protocol on the in-memory journal (no cluster, no database).</summary>
public sealed class SessionActorTests() : Akka.TestKit.Xunit2.TestKit(
    """
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
}
