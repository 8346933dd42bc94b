using System.Text;
using System.Text.Json.Nodes;
using Broker.Core.Log;
using Broker.IntegrationTests.Infrastructure;
using Broker.IntegrationTests.Sessions;

namespace Broker.IntegrationTests;

/// <summary>Three nodes whose topics <c>room.&gt;</c> share one four-partition Kafka topic, with a session store shared by the nodes.</summary>
public sealed class MultiplexClusterFixture : IAsyncLifetime
{
    public const string SharedTopic = "broker.rooms";
    public const int Partitions = 4;

    private readonly SqliteStore _store = new();

    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(3, _store.Overrides,
        $$"""broker.namespaces = [ { pattern = "room.>", kafka-topic = "{{SharedTopic}}", multiplex = true, partitions = {{Partitions}} } ]""");

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
        _store.Dispose();
    }
}

/// <summary>
/// A multiplexed namespace across a cluster: every node's subscribers of a topic see the topic's
/// messages in one order with the same positions, <c>since</c> resumes exactly on another node, a
/// retry on another node is written once, and a durable session resumes on another node.
/// </summary>
public sealed class MultiplexClusterTests(MultiplexClusterFixture fixture) : IClassFixture<MultiplexClusterFixture>
{
    private TestCluster Cluster => fixture.Cluster;
    private TestBroker Node(int i) => Cluster.Nodes[i];

    private static string NewTopic(string name) => $"room.{Guid.NewGuid():N}.{name}";

    [Fact]
    public async Task Publishers_on_every_node_and_subscribers_on_every_node_see_each_topics_one_order_with_the_same_positions()
    {
        string[] topics = [NewTopic("a"), NewTopic("b"), NewTopic("c")];
        var subs = new List<WsClient>();
        var pubs = new List<WsClient>();
        try
        {
            for (var n = 0; n < 3; n++)
            {
                var sub = await Node(n).ConnectAsync();
                foreach (var t in topics) await sub.SubscribeAsync(t, $"s-{t}");
                subs.Add(sub);
                pubs.Add(await Node(n).ConnectAsync());
            }
            // Each node's publisher writes 20 messages to every topic, interleaved.
            const int each = 20;
            await Task.WhenAll(Enumerable.Range(0, 3).Select(async n =>
            {
                for (var i = 0; i < each; i++)
                    foreach (var t in topics) await pubs[n].PublishAsync(t, new { node = n, i }, $"n{n}-{t}-{i}");
            }));

            var total = 3 * each * topics.Length;
            var perNode = new List<List<JsonObject>>();
            foreach (var sub in subs) perNode.Add(await sub.MessagesAsync(total));
            foreach (var t in topics)
            {
                var first = perNode[0].Where(m => (string?)m["topic"] == t).Select(m => (string)m["pos"]!).ToList();
                Assert.Equal(3 * each, first.Count);
                Assert.Equal(first.Count, first.Distinct().Count());
                // The same messages in the same order, with the same positions, on every node.
                for (var n = 1; n < 3; n++) Assert.Equal(first, perNode[n].Where(m => (string?)m["topic"] == t).Select(m => (string)m["pos"]!));
                // Each publisher's messages keep their order.
                for (var p = 0; p < 3; p++)
                {
                    var seq = perNode[0].Where(m => (string?)m["topic"] == t && (int)m["data"]!["node"]! == p).Select(m => (int)m["data"]!["i"]!).ToList();
                    Assert.Equal(Enumerable.Range(0, each), seq);
                }
            }
        }
        finally
        {
            foreach (var c in subs.Concat(pubs)) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Since_from_one_node_resumes_exactly_on_another_and_a_retry_on_another_node_is_written_once()
    {
        var topic = NewTopic("since");
        var client = Guid.NewGuid().ToString("N");
        var acks = new List<string>();
        await using (var pub = await Node(0).ConnectAsync($"?client={client}"))
        {
            for (var i = 0; i < 10; i++) acks.Add(await pub.PublishAsync(topic, new { i }, $"p{i}"));
        }
        // The same publish again, through another node: answered with the original position, not written again.
        await using (var retry = await Node(2).ConnectAsync($"?client={client}"))
        {
            Assert.Equal(acks[9], await retry.PublishAsync(topic, new { i = 9 }, "p9"));
        }
        var partition = KafkaPartitioner.Partition(Encoding.UTF8.GetBytes(topic), MultiplexClusterFixture.Partitions);
        Assert.Equal(10, KafkaRead.Partition(Cluster.Kafka.BootstrapServers, MultiplexClusterFixture.SharedTopic, partition)
            .Count(r => Encoding.UTF8.GetString(r.Message.Key!) == topic));

        await using var sub = await Node(1).ConnectAsync();
        var reply = await sub.SubscribeAsync(topic, "s", new { since = acks[3] });
        Assert.True((bool)reply["recovered"]!);
        var resumed = await sub.MessagesAsync(6);
        Assert.Equal(acks[4..], resumed.Select(m => (string)m["pos"]!));
    }

    [Fact]
    public async Task A_durable_session_resumes_a_multiplexed_topic_on_another_node_after_its_last_commit()
    {
        var topic = NewTopic("session");
        var session = Guid.NewGuid().ToString("N");
        await using var pub = await Node(0).ConnectAsync();
        string[] acks;
        await using (var first = await Node(0).ConnectAsync($"?session={session}"))
        {
            await first.SubscribeAsync(topic);
            acks = [await pub.PublishAsync(topic, 1, "p1"), await pub.PublishAsync(topic, 2, "p2"), await pub.PublishAsync(topic, 3, "p3")];
            Assert.Equal(acks, (await first.MessagesAsync(3)).Select(m => (string)m["pos"]!));
            await first.SendAsync(new { type = "commit", topic, pos = acks[1] });
            await first.SendAsync(new { type = "ping", id = "sync" }); // requests are handled in order: the commit is stored
            Assert.Equal("pong", (string?)(await first.ReplyToAsync("sync"))["type"]);
        }
        var away = await pub.PublishAsync(topic, 4, "p4");

        await using var second = await Node(2).ConnectAsync($"?session={session}");
        var restored = await second.ExpectAsync("subscribed");
        Assert.Equal(topic, (string?)restored["topic"]);
        Assert.Equal(acks[1], (string?)restored["since"]);
        Assert.Equal([acks[2], away], (await second.MessagesAsync(2)).Select(m => (string)m["pos"]!));
    }
}
