using Akka.Actor;
using Akka.Serialization;
using Broker.Core.Admin;
using Broker.Core.Serialization;
using Broker.Core.Sessions;
using Broker.Core.Topics;

namespace Broker.Tests.Serialization;

public sealed class BrokerSerializerTests() : Akka.TestKit.Xunit2.TestKit(
    """
    akka.actor {
      serializers.broker = "Broker.Core.Serialization.BrokerSerializer, Broker.Core"
      serialization-bindings { "Broker.Core.Topics.IBrokerMessage, Broker.Core" = broker }
      serialization-identifiers { "Broker.Core.Serialization.BrokerSerializer, Broker.Core" = 4711 }
    }
    """)
{
    public static TheoryData<object> Messages() => new()
    {
        new TopicCommands.Publish("orders.eu", "{\"n\":1,\"s\":\"café ✓\"}"u8.ToArray(), "customer-7", "client-1", "req-1"),
        new TopicCommands.Publish("t", "null"u8.ToArray(), null, null, null),
        new TopicCommands.Publish("t", new byte[100_000], "", "c", ""),
        new TopicCommands.Publish("t", "1"u8.ToArray(), "k", "c", "1", DeadlineUnixMs: 1_767_225_600_123),
        new TopicCommands.PublishAck("orders.eu", "AQEB"),
        new TopicCommands.PublishAck("t", "AQEC", Duplicate: true),
        new TopicCommands.PublishRejected("t", "unavailable", "the log is unavailable; retry"),
        new TopicSettingsCommands.Get("orders"),
        new TopicSettingsCommands.SetReadOnly("orders", true),
        new TopicSettingsCommands.Current("orders", false),
        new TopicSettingsEvents.ReadOnlyChanged("orders", true),
        new SessionCommands.AddSubscription("session-1", "orders.eu", "AQEB"),
        new SessionCommands.AddSubscription("session-1", "orders.eu", "AQEB", "customer-7", Headers: true),
        new SessionCommands.AddSubscription("s", "t", "AQEB", Key: ""),
        new SessionCommands.AddSubscription("s", "t", "AQEB", Headers: true),
        new SessionCommands.RemoveSubscription("session-1", "orders.eu"),
        new SessionCommands.Commit("s", "t", "AQEC"),
        new SessionCommands.Done("s"),
        new SessionCommands.Rejected("s", "not_found", "the session is not subscribed to t"),
        new SessionCommands.TakenOver("s"),
        new SessionCommands.Attached("s", [new SessionTopic("a", "AQEA"), new SessionTopic("b.c", "AQEB")]),
        new SessionCommands.Attached("s", []),
        new SessionCommands.Attached("s", [new SessionTopic("a", "AQEA"), new SessionTopic("b", "AQEB", "k✓", true), new SessionTopic("c", "AQEC", Headers: true)]),
        new SessionEvents.Subscribed("t", "AQEA"),
        new SessionEvents.Subscribed("t", "AQEA", "k1", Headers: true),
        new SessionEvents.Subscribed("t", "AQEA", "k1"),
        new SessionEvents.Subscribed("t", "AQEA", Headers: true),
        new SessionEvents.Unsubscribed("t"),
        new SessionEvents.Committed("t", "AQEB"),
        new SessionEvents.Snapshot([new SessionTopic("café", "AQEB")]),
        new SessionEvents.Snapshot([new SessionTopic("café", "AQEB"), new SessionTopic("t", "AQEA", "k1", true), new SessionTopic("u", "AQEC", "k2")]),
        new SessionEvents.Snapshot([]),
        new SessionEvents.Snapshot([new SessionTopic("a", "AQEA")], new SessionAttachment("akka.tcp://broker@127.0.0.1:4053/user/endpoint#1", 1_767_225_600_000)),
        new SessionEvents.Snapshot([], new SessionAttachment(null, 1)),
        new SessionEvents.ConnectionAttached("akka.tcp://broker@127.0.0.1:4053/user/$a#42", 1_767_225_600_000),
        new SessionEvents.ConnectionDetached(1_767_225_600_001),
        new SessionCommands.CheckExpiry("s"),
        new SessionCommands.Checked("s"),
        NodeInfo.GetNodeStatus.Instance,
        new NodeInfo.NodeStatus("akka.tcp://broker@127.0.0.1:4053", 3, false, [new TopicSubscribers("orders", "p.orders", 2), new TopicSubscribers("café", "café", 0)]),
        new NodeInfo.NodeStatus("akka.tcp://broker@127.0.0.1:4054", 0, true, []),
        new NodeInfo.DrainNode(10_000),
        new NodeInfo.Drained("akka.tcp://broker@127.0.0.1:4053", 5, 1),
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public void Every_cross_node_message_round_trips_through_the_serializer_bound_to_it(object message)
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<BrokerSerializer>(serializer);
        Assert.Equal(BrokerSerializer.Id, serializer.Identifier);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var bytes = serializer.ToBinary(message);
        var back = Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest);
        AssertSame(message, back);
    }

    /// <summary>Asserts that <paramref name="back"/> equals <paramref name="expected"/> (records holding arrays or lists compared by content).</summary>
    private static void AssertSame(object expected, object back)
    {
        switch (expected)
        {
            case TopicCommands.Publish p:
                var q = Assert.IsType<TopicCommands.Publish>(back);
                Assert.Equal(p.Data, q.Data);
                Assert.Equal(p with { Data = q.Data }, q);
                break;
            case SessionCommands.Attached a:
                var b = Assert.IsType<SessionCommands.Attached>(back);
                Assert.Equal(a.SessionId, b.SessionId);
                Assert.Equal(a.Topics, b.Topics);
                break;
            case SessionEvents.Snapshot a:
                var snapshot = Assert.IsType<SessionEvents.Snapshot>(back);
                Assert.Equal(a.Topics, snapshot.Topics);
                Assert.Equal(a.Attachment, snapshot.Attachment);
                break;
            case NodeInfo.NodeStatus n:
                var m = Assert.IsType<NodeInfo.NodeStatus>(back);
                Assert.Equal(n.Topics, m.Topics);
                Assert.Equal(n with { Topics = m.Topics }, m);
                break;
            default:
                Assert.Equal(expected, back);
                break;
        }
    }

    [Fact]
    public void Session_messages_carrying_a_connection_round_trip_with_a_resolvable_actor_ref()
    {
        var serializer = Sys.Serialization.FindSerializerFor(new SessionCommands.Attach("s", TestActor));
        foreach (var message in new object[] { new SessionCommands.Attach("s", TestActor), new SessionCommands.Detach("s", TestActor) })
        {
            var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
            var back = Sys.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
            Assert.Equal(message, back);
            var connection = back is SessionCommands.Attach a ? a.Connection : ((SessionCommands.Detach)back).Connection;
            connection.Tell("hello");
            ExpectMsg("hello");
        }
    }

    /// <summary>
    /// Session events and snapshots are persisted forever: bytes written by earlier versions must
    /// stay readable. These are the exact bytes (manifest, hex) the serializer wrote before
    /// subscriptions carried a key filter and the headers option; do not regenerate them.
    /// </summary>
    public static TheoryData<string, string, object> PersistedBeforeFilters() => new()
    {
        { "eS", "01060000006F72646572730400000041514542", new SessionEvents.Subscribed("orders", "AQEB") },
        { "eC", "01060000006F72646572730400000041514543", new SessionEvents.Committed("orders", "AQEC") },
        {
            "eN", "0102000000060000006F7264657273040000004151454305000000636166C3A90400000041514541",
            new SessionEvents.Snapshot([new SessionTopic("orders", "AQEC"), new SessionTopic("café", "AQEA")])
        },
        // Commands cross nodes (a rolling upgrade mixes versions): the old shapes still read too.
        { "ss", "01020000007331060000006F72646572730400000041514542", new SessionCommands.AddSubscription("s1", "orders", "AQEB") },
        { "sA", "0102000000733101000000060000006F72646572730400000041514543", new SessionCommands.Attached("s1", [new SessionTopic("orders", "AQEC")]) },
    };

    [Theory]
    [MemberData(nameof(PersistedBeforeFilters))]
    public void Session_bytes_written_before_filters_existed_still_deserialize(string manifest, string hex, object expected)
    {
        // Without a key filter or headers the current code still writes exactly these bytes (older nodes read them).
        var serializer = Sys.Serialization.FindSerializerFor(expected);
        Assert.Equal(manifest, Akka.Serialization.Serialization.ManifestFor(serializer, expected));
        Assert.Equal(hex, Convert.ToHexString(serializer.ToBinary(expected)));

        AssertSame(expected, Sys.Serialization.Deserialize(Convert.FromHexString(hex), BrokerSerializer.Id, manifest));
    }

    [Fact]
    public void Subscriptions_with_a_key_or_headers_use_their_own_manifests_and_the_options_survive()
    {
        var filtered = new SessionTopic("t", "AQEA", "k1", true);
        foreach (var (message, expected) in new (object, string)[]
        {
            (new SessionCommands.AddSubscription("s", "t", "AQEA", "k1", true), "ss2"),
            (new SessionEvents.Subscribed("t", "AQEA", null, true), "eS2"),
            (new SessionEvents.Snapshot([new SessionTopic("plain", "AQEA"), filtered]), "eN2"),
            (new SessionCommands.Attached("s", [filtered]), "sA2"),
        })
        {
            var serializer = Sys.Serialization.FindSerializerFor(message);
            var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
            Assert.Equal(expected, manifest);
            var back = Sys.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
            switch (back)
            {
                case SessionEvents.Snapshot snap:
                    Assert.Equal([new SessionTopic("plain", "AQEA"), filtered], snap.Topics);
                    break;
                case SessionCommands.Attached a:
                    Assert.Equal(filtered, Assert.Single(a.Topics));
                    break;
                default:
                    Assert.Equal(message, back);
                    break;
            }
        }
    }

    [Fact]
    public void A_publish_with_a_deadline_has_its_own_manifest_and_one_without_is_written_as_before()
    {
        var plain = new TopicCommands.Publish("t", "1"u8.ToArray(), null, "c", "1");
        var serializer = Sys.Serialization.FindSerializerFor(plain);
        Assert.Equal("tp", Akka.Serialization.Serialization.ManifestFor(serializer, plain));
        // The bytes of a publish without deadline, as nodes wrote them before deadlines existed.
        Assert.Equal("0101000000740100000031FFFFFFFF01000000630100000031", Convert.ToHexString(serializer.ToBinary(plain)));
        var timed = plain with { DeadlineUnixMs = 42 };
        Assert.Equal("tp2", Akka.Serialization.Serialization.ManifestFor(serializer, timed));
        var back = Assert.IsType<TopicCommands.Publish>(Sys.Serialization.Deserialize(serializer.ToBinary(timed), serializer.Identifier, "tp2"));
        Assert.Equal(42, back.DeadlineUnixMs);
    }

    [Fact]
    public void Unknown_manifest_and_truncated_bytes_are_rejected()
    {
        var serializer = new BrokerSerializer((ExtendedActorSystem)Sys);
        Assert.ThrowsAny<Exception>(() => serializer.FromBinary([1, 0], "nope"));
        var bytes = serializer.ToBinary(new TopicCommands.PublishAck("topic", "AQEB"));
        Assert.ThrowsAny<Exception>(() => serializer.FromBinary(bytes[..^3], "ta"));
        Assert.ThrowsAny<Exception>(() => serializer.ToBinary("not a broker message"));
    }
}
