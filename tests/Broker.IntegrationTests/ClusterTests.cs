using System.Text;
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
        await using var onA = await A.ConnectAsync();
        await using var onC = await C.ConnectAsync();
        await using var pubB = await B.ConnectAsync();
        await onA.SubscribeAsync(topic, "s");
        await onC.SubscribeAsync(topic, "s");

        var p1 = await pubB.PublishAsync(topic, new { n = 1 }, "p1");
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = fixture.Cluster.Kafka.BootstrapServers }).Build())
            await producer.ProduceAsync(topic, new Message<Null, string> { Value = "{\"n\":2}" });
        var p3 = await pubB.PublishAsync(topic, new { n = 3 }, "p3");

        foreach (var sub in new[] { onA, onC })
        {
            var m1 = await sub.ExpectAsync("message");
            var m2 = await sub.ExpectAsync("message");
            var m3 = await sub.ExpectAsync("message");
            Assert.Equal(p1, (string?)m1["pos"]);
            Assert.Equal(2, (int)m2["data"]!["n"]!);
            Assert.Equal(p3, (string?)m3["pos"]);
            await sub.SendAsync(new { type = "ping", id = "end" });
            Assert.Equal("pong", (string?)(await sub.ReceiveAsync())["type"]); // and nothing twice
        }
    }

    [Fact]
    public async Task Two_publishers_on_different_nodes_every_subscriber_sees_the_same_sequence()
    {
        const string topic = "cluster.order";
        const int each = 300;
        var subs = new[] { await A.ConnectAsync(), await B.ConnectAsync(), await C.ConnectAsync() };
        try
        {
            foreach (var s in subs) await s.SubscribeAsync(topic, "s");
            await using var pubA = await A.ConnectAsync();
            await using var pubC = await C.ConnectAsync();
            await Task.WhenAll(Publish(pubA, "a"), Publish(pubC, "c"));

            var seen = await Task.WhenAll(subs.Select(async s =>
            {
                var list = new List<string>();
                for (var i = 0; i < 2 * each; i++)
                {
                    var m = await s.ExpectAsync("message");
                    list.Add($"{m["pos"]}:{m["data"]!["from"]}{m["data"]!["i"]}");
                }
                return list;
            }));
            Assert.Equal(seen[0], seen[1]);
            Assert.Equal(seen[0], seen[2]);
            // Each publisher's own messages keep their order.
            foreach (var from in new[] { "a", "c" })
                Assert.Equal(Enumerable.Range(0, each).Select(i => $"{from}{i}"), seen[0].Select(x => x.Split(':')[1]).Where(x => x.StartsWith(from)));
        }
        finally
        {
            foreach (var s in subs) await s.DisposeAsync();
        }

        async Task Publish(WsClient pub, string from)
        {
            var send = Task.Run(async () =>
            {
                for (var i = 0; i < each; i++) await pub.SendAsync(new { type = "publish", id = $"{from}{i}", topic, data = new { from, i } });
            });
            for (var i = 0; i < each; i++) Assert.Equal("ack", (string?)(await pub.ReceiveAsync())["type"]);
            await send;
        }
    }

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
