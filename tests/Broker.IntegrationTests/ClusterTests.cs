using System.Text;
using Broker.Client;
using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

public sealed class ThreeNodeFixture : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(3);

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>Three nodes, one cluster, one Kafka log: any node serves any topic.</summary>
public sealed class ClusterTests(ThreeNodeFixture fixture) : IClassFixture<ThreeNodeFixture>
{
    private TestBroker A => fixture.Cluster.Nodes[0];
    private TestBroker B => fixture.Cluster.Nodes[1];
    private TestBroker C => fixture.Cluster.Nodes[2];

    [Fact]
    public async Task A_publish_on_one_node_and_an_external_record_reach_subscribers_on_the_others_once_in_the_same_order()
    {
        const string topic = "cluster.cross";
        await using var onA = await A.ClientAsync();
        await using var onC = await C.ClientAsync();
        await using var pubB = await B.ClientAsync();
        var subs = new[] { (onA, await onA.SubscribeWithinAsync(topic)), (onC, await onC.SubscribeWithinAsync(topic)) };

        var p1 = await pubB.PublishJsonAsync(topic, new { n = 1 });
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = fixture.Cluster.Kafka.BootstrapServers }).Build())
            await producer.ProduceAsync(topic, new Message<Null, string> { Value = "{\"n\":2}" });
        var p3 = await pubB.PublishJsonAsync(topic, new { n = 3 });

        foreach (var (client, sub) in subs)
        {
            var m = await sub.TakeAsync(3);
            Assert.Equal(p1, m[0].Pos);
            Assert.Equal(2, m[1].Int("n"));
            Assert.Equal(p3, m[2].Pos);
            await sub.AssertNothingMoreAsync(client); // and nothing twice
        }
    }

    [Fact]
    public async Task Two_publishers_on_different_nodes_every_subscriber_sees_the_same_sequence()
    {
        const string topic = "cluster.order";
        const int each = 300;
        var clients = new[] { await A.ClientAsync(), await B.ClientAsync(), await C.ClientAsync() };
        try
        {
            var subs = new List<BrokerSubscription>();
            foreach (var c in clients) subs.Add(await c.SubscribeWithinAsync(topic));
            await using var pubA = await A.ClientAsync();
            await using var pubC = await C.ClientAsync();
            await Task.WhenAll(Publish(pubA, "a"), Publish(pubC, "c"));

            var seen = await Task.WhenAll(subs.Select(async s =>
                (await s.TakeAsync(2 * each)).Select(m => $"{m.Pos}:{m.Str("from")}{m.Int("i")}").ToList()));
            Assert.Equal(seen[0], seen[1]);
            Assert.Equal(seen[0], seen[2]);
            // Each publisher's own messages keep their order.
            foreach (var from in new[] { "a", "c" })
                Assert.Equal(Enumerable.Range(0, each).Select(i => $"{from}{i}"), seen[0].Select(x => x.Split(':')[1]).Where(x => x.StartsWith(from)));
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }

        // Pipelined: every publish is sent before the first ack is awaited.
        static Task Publish(BrokerClient pub, string from) =>
            Task.WhenAll(Enumerable.Range(0, each).Select(i => pub.PublishJsonAsync(topic, new { from, i })).ToList());
    }

    /// <summary>
    /// A resend with a chosen request id is the protocol's own rule (Broker.Client resends with its
    /// ids by itself, see Client/ClientClusterFailoverTests): this test sends it by hand.
    /// </summary>
    [Fact]
    public async Task A_retried_publish_with_the_same_client_and_id_is_acknowledged_once_and_written_once()
    {
        const string topic = "cluster.retry";
        string first;
        await using (var c1 = await A.ConnectAsync("?client=retry-client-1"))
            first = await c1.PublishAsync(topic, new { v = 1 }, "r1");
        // The client reconnects to another node and resends the same request.
        await using var c2 = await C.ConnectAsync("?client=retry-client-1");
        Assert.Equal(first, await c2.PublishAsync(topic, new { v = 1 }, "r1"));
        // Same id from another client is another message.
        await using var other = await B.ConnectAsync("?client=retry-client-2");
        Assert.NotEqual(first, await other.PublishAsync(topic, new { v = 1 }, "r1"));

        Assert.Equal(2, CountRecords(fixture.Cluster.Kafka.BootstrapServers, topic));
    }

    internal static int CountRecords(string bootstrap, string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "count-" + Guid.NewGuid() }).Build();
        var wm = consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10));
        return (int)(wm.High.Value - wm.Low.Value);
    }

    internal static List<string> RequestIds(string bootstrap, string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "ids-" + Guid.NewGuid() }).Build();
        var tp = new TopicPartition(topic, 0);
        var wm = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
        consumer.Assign(new TopicPartitionOffset(tp, wm.Low));
        var ids = new List<string>();
        while (ids.Count < wm.High.Value - wm.Low.Value)
        {
            var r = consumer.Consume(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException("record not read back");
            ids.Add(r.Message.Headers.TryGetLastBytes("broker-id", out var id) ? Encoding.UTF8.GetString(id) : "");
        }
        return ids;
    }
}
