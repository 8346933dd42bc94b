using System.Text;
using Broker.Client;
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
        var clients = new List<BrokerClient>();
        try
        {
            var subs = new List<BrokerSubscription[]>();
            var pubs = new List<BrokerClient>();
            for (var n = 0; n < 3; n++)
            {
                var sub = await Node(n).ClientAsync();
                clients.Add(sub);
                var perTopic = new List<BrokerSubscription>();
                foreach (var t in topics) perTopic.Add(await sub.SubscribeWithinAsync(t));
                subs.Add([.. perTopic]);
                var pub = await Node(n).ClientAsync();
                clients.Add(pub);
                pubs.Add(pub);
            }
            // Each node's publisher writes 20 messages to every topic, interleaved.
            const int each = 20;
            await Task.WhenAll(Enumerable.Range(0, 3).Select(async n =>
            {
                for (var i = 0; i < each; i++)
                    foreach (var t in topics) await pubs[n].PublishJsonAsync(t, new { node = n, i });
            }));

            for (var k = 0; k < topics.Length; k++)
            {
                var perNode = new List<List<BrokerMessage>>();
                for (var n = 0; n < 3; n++) perNode.Add(await subs[n][k].TakeAsync(3 * each));
                var first = perNode[0].Select(m => m.Pos).ToList();
                Assert.Equal(first.Count, first.Distinct().Count());
                // The same messages in the same order, with the same positions, on every node.
                for (var n = 1; n < 3; n++) Assert.Equal(first, perNode[n].Select(m => m.Pos));
                Assert.All(perNode.SelectMany(m => m), m => Assert.Equal(topics[k], m.Topic));
                // Each publisher's messages keep their order.
                for (var p = 0; p < 3; p++)
                    Assert.Equal(Enumerable.Range(0, each), perNode[0].Where(m => m.Int("node") == p).Select(m => m.Int("i")));
            }
            for (var n = 0; n < 3; n++)
                foreach (var sub in subs[n]) await sub.AssertNothingMoreAsync(clients[2 * n]);
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Since_from_one_node_resumes_exactly_on_another_and_a_retry_on_another_node_is_written_once()
    {
        var topic = NewTopic("since");
        var client = Guid.NewGuid().ToString("N");
        var acks = new List<string>();
        // The retry with a chosen request id is sent by hand (a protocol-level resend; Broker.Client uses ids of its own).
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

        await using var subscriber = await Node(1).ClientAsync();
        var sub = await subscriber.SubscribeWithinAsync(topic, new SubscribeOptions { Since = acks[3] });
        Assert.True(sub.Recovered);
        Assert.Equal(acks[4..], (await sub.TakeAsync(6)).Select(m => m.Pos));
        await sub.AssertNothingMoreAsync(subscriber);
    }

    [Fact]
    public async Task A_durable_session_resumes_a_multiplexed_topic_on_another_node_after_its_last_commit()
    {
        var topic = NewTopic("session");
        var options = BrokerClients.Options(session: Guid.NewGuid().ToString("N"));
        await using var pub = await Node(0).ClientAsync();
        string[] acks;
        await using (var first = await Node(0).ClientAsync(options))
        {
            var sub = await first.SubscribeWithinAsync(topic);
            acks = [await pub.PublishJsonAsync(topic, 1), await pub.PublishJsonAsync(topic, 2), await pub.PublishJsonAsync(topic, 3)];
            Assert.Equal(acks, (await sub.TakeAsync(3)).Select(m => m.Pos));
            await sub.CommitAsync(acks[1]);
            await first.PingAsync(); // requests are handled in order: the commit is stored
        }
        var away = await pub.PublishJsonAsync(topic, 4);

        BrokerSubscription restored = null!;
        var resumes = new System.Collections.Concurrent.ConcurrentQueue<SubscriptionResumedEventArgs>();
        await using var second = await Node(2).ClientAsync(options, c =>
        {
            restored = c.Subscribe(topic);
            restored.Resumed += (_, e) => resumes.Enqueue(e);
        });
        Assert.Equal([acks[2], away], (await restored.TakeAsync(2)).Select(m => m.Pos));
        Assert.Contains(resumes, e => e is { RestoredBySession: true, Recovered: true });
        await restored.AssertNothingMoreAsync(second);
    }
}
