using System.Net;
using System.Net.Sockets;
using Broker.DevKafka;
using Confluent.Kafka;
using Xunit;

namespace Broker.Tests.DevKafka;

public sealed class MockKafkaClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Produces_idempotently_and_consumes_back_by_offset()
    {
        using var cluster = MockKafkaCluster.Start(port: 0);
        cluster.CreateTopic("orders");

        using var producer = NewProducer(cluster);
        for (var i = 0; i < 3; i++)
        {
            var r = await producer.ProduceAsync(new TopicPartition("orders", 0), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
            Assert.Equal(i, r.Offset.Value);
            Assert.Equal(PersistenceStatus.Persisted, r.Status);
        }

        var consumed = ConsumeFrom(cluster, new TopicPartitionOffset("orders", 0, 1), count: 2);
        Assert.Equal(["v1", "v2"], consumed.Select(c => c.Message.Value));
        Assert.Equal([1L, 2L], consumed.Select(c => c.Offset.Value));
        Assert.All(consumed, c => Assert.Equal(TimestampType.CreateTime, c.Message.Timestamp.Type));
    }

    [Fact]
    public async Task Watermarks_reflect_produced_records()
    {
        using var cluster = MockKafkaCluster.Start(port: 0);
        cluster.CreateTopic("wm");
        using var producer = NewProducer(cluster);
        for (var i = 0; i < 4; i++)
            await producer.ProduceAsync("wm", new Message<string, string> { Key = "k", Value = "v" });

        using var consumer = NewConsumer(cluster);
        var wm = consumer.QueryWatermarkOffsets(new TopicPartition("wm", 0), Timeout);
        Assert.Equal(0, wm.Low.Value);
        Assert.Equal(4, wm.High.Value);
    }

    [Fact]
    public async Task Bootstraps_through_the_requested_fixed_port_and_on_loopback_serves_from_the_mocks_own_listener()
    {
        var port = FreePort();
        using var cluster = MockKafkaCluster.Start("127.0.0.1", port);
        Assert.Equal($"127.0.0.1:{port}", cluster.BootstrapServers);

        // Clients bootstrap through the fixed port; Metadata then sends them to the mock broker's own
        // loopback listener, so produce and fetch traffic skips the forwarder.
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build())
        {
            var broker = Assert.Single(admin.GetMetadata(Timeout).Brokers);
            Assert.Equal("127.0.0.1", broker.Host);
            Assert.NotEqual(port, broker.Port);
        }

        cluster.CreateTopic("fixed");
        using var producer = NewProducer(cluster);
        await producer.ProduceAsync("fixed", new Message<string, string> { Key = "k", Value = "through-the-fixed-port" });
        var consumed = Assert.Single(ConsumeFrom(cluster, new TopicPartitionOffset("fixed", 0, Offset.Beginning), count: 1));
        Assert.Equal("through-the-fixed-port", consumed.Message.Value);
    }

    [Fact]
    public async Task Broker_down_fails_produce_and_broker_up_recovers()
    {
        using var cluster = MockKafkaCluster.Start(port: 0);
        cluster.CreateTopic("flaky");
        using var producer = NewProducer(cluster, messageTimeoutMs: 2000);
        await producer.ProduceAsync("flaky", new Message<string, string> { Key = "k", Value = "before" });

        cluster.SetBrokerDown();
        var ex = await Assert.ThrowsAsync<ProduceException<string, string>>(
            () => producer.ProduceAsync("flaky", new Message<string, string> { Key = "k", Value = "while-down" }));
        Assert.Equal(ErrorCode.Local_MsgTimedOut, ex.Error.Code);

        cluster.SetBrokerUp();
        // The same producer reconnects well within its 2 s message timeout (backoff is capped at 500 ms).
        var r = await producer.ProduceAsync("flaky", new Message<string, string> { Key = "k", Value = "after" });
        Assert.Equal(PersistenceStatus.Persisted, r.Status);
    }

    [Fact]
    public async Task Two_clusters_run_side_by_side()
    {
        using var a = MockKafkaCluster.Start(port: 0);
        using var b = MockKafkaCluster.Start(port: 0);
        Assert.NotEqual(a.BootstrapServers, b.BootstrapServers);
        a.CreateTopic("shared");
        b.CreateTopic("shared");

        using (var pa = NewProducer(a))
            await pa.ProduceAsync("shared", new Message<string, string> { Key = "k", Value = "a" });
        using (var pb = NewProducer(b))
            for (var i = 0; i < 2; i++)
                await pb.ProduceAsync("shared", new Message<string, string> { Key = "k", Value = "b" });

        using var ca = NewConsumer(a);
        using var cb = NewConsumer(b);
        Assert.Equal(1, ca.QueryWatermarkOffsets(new TopicPartition("shared", 0), Timeout).High.Value);
        Assert.Equal(2, cb.QueryWatermarkOffsets(new TopicPartition("shared", 0), Timeout).High.Value);
    }

    [Fact]
    public async Task DeleteRecords_moves_the_low_watermark()
    {
        using var cluster = MockKafkaCluster.Start(port: 0);
        cluster.CreateTopic("retained");
        using var producer = NewProducer(cluster);
        for (var i = 0; i < 5; i++)
            await producer.ProduceAsync("retained", new Message<string, string> { Key = "k", Value = $"v{i}" });

        cluster.DeleteRecords("retained", 0, 3);

        using var consumer = NewConsumer(cluster);
        var wm = consumer.QueryWatermarkOffsets(new TopicPartition("retained", 0), Timeout);
        Assert.Equal((3L, 5L), (wm.Low.Value, wm.High.Value));
        var first = ConsumeFrom(cluster, new TopicPartitionOffset("retained", 0, Offset.Beginning), count: 1)[0];
        Assert.Equal((3L, "v3"), (first.Offset.Value, first.Message.Value));
    }

    [Fact]
    public void CreateTopic_is_idempotent_and_Dispose_can_repeat()
    {
        var cluster = MockKafkaCluster.Start(port: 0);
        cluster.CreateTopic("twice", 2);
        cluster.CreateTopic("twice", 2);
        cluster.Dispose();
        cluster.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cluster.CreateTopic("late"));
    }

    [Fact]
    public async Task A_topic_a_producer_writes_to_first_gets_the_configured_partitions()
    {
        using var cluster = MockKafkaCluster.Start(port: 0, autoCreatePartitions: 2);
        using var producer = NewProducer(cluster);
        await producer.ProduceAsync("written-first", new Message<string, string> { Key = "k", Value = "v" });

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build();
        Assert.Equal(2, Assert.Single(admin.GetMetadata("written-first", Timeout).Topics).Partitions.Count);
        // A topic created on purpose keeps its own count.
        cluster.CreateTopic("made", 3);
        Assert.Equal(3, Assert.Single(admin.GetMetadata("made", Timeout).Topics).Partitions.Count);
    }

    [Fact]
    public void With_a_partition_count_the_brokers_own_clients_are_served_by_the_mock_and_others_stay_on_the_forwarder()
    {
        var port = FreePort();
        using var cluster = MockKafkaCluster.Start("127.0.0.1", port, autoCreatePartitions: 1);
        (string Host, int Port) Advertised(string? clientId)
        {
            var config = new AdminClientConfig { BootstrapServers = cluster.BootstrapServers };
            if (clientId is not null) config.ClientId = clientId;
            using var admin = new AdminClientBuilder(config).Build();
            var broker = Assert.Single(admin.GetMetadata(Timeout).Brokers);
            return (broker.Host, broker.Port);
        }

        // The broker's own producer and consumers (client.id broker-…): the mock's own listener, no forwarder hop.
        var own = Advertised(MockKafkaCluster.BrokerClientIdPrefix + "producer");
        Assert.Equal("127.0.0.1", own.Host);
        Assert.NotEqual(port, own.Port);
        // Anyone else (kcat, tools): the forwarder, which sees their Metadata requests.
        Assert.Equal(("127.0.0.1", port), Advertised(null));
        Assert.Equal(("127.0.0.1", port), Advertised("kcat"));
    }

    [Fact]
    public async Task A_producer_that_knows_the_cluster_already_gets_the_configured_partitions_for_a_new_topic()
    {
        using var cluster = MockKafkaCluster.Start(port: 0, autoCreatePartitions: 2);
        cluster.CreateTopic("known", 1);
        using var producer = NewProducer(cluster);
        await producer.ProduceAsync("known", new Message<string, string> { Key = "k", Value = "v" });
        // Its later Metadata requests go to the broker it learned from the first answer, not to bootstrap.
        for (var i = 0; i < 5; i++)
            await producer.ProduceAsync($"later-{i}", new Message<string, string> { Key = "k", Value = "v" });

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build();
        for (var i = 0; i < 5; i++)
            Assert.Equal(2, Assert.Single(admin.GetMetadata($"later-{i}", Timeout).Topics).Partitions.Count);
    }

    [Fact]
    public void A_metadata_query_that_forbids_auto_creation_creates_nothing()
    {
        using var cluster = MockKafkaCluster.Start(port: 0, autoCreatePartitions: 1);
        // Consumers ask with allow.auto.create.topics off (librdkafka's consumer default).
        using var consumer = NewConsumer(cluster);
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        var topic = Assert.Single(admin.GetMetadata("only-asked", Timeout).Topics);
        Assert.Equal(ErrorCode.UnknownTopicOrPart, topic.Error.Code);
    }

    [Fact]
    public void Without_a_partition_count_auto_created_topics_get_the_mock_default_of_four()
    {
        // The mock's own default (not configurable in librdkafka): the broker always gives a count.
        using var cluster = MockKafkaCluster.Start(port: 0);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build();
        var topic = Assert.Single(admin.GetMetadata("never-created", Timeout).Topics);
        Assert.Equal(ErrorCode.NoError, topic.Error.Code);
        Assert.Equal(4, topic.Partitions.Count);
    }

    private static IProducer<string, string> NewProducer(MockKafkaCluster cluster, int messageTimeoutMs = 10_000) =>
        new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            Acks = Acks.All,
            EnableIdempotence = true,
            MessageTimeoutMs = messageTimeoutMs,
            ReconnectBackoffMs = 50,
            ReconnectBackoffMaxMs = 500,
        }).Build();

    private static IConsumer<string, string> NewConsumer(MockKafkaCluster cluster) =>
        new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "unused-assign-only", // required by the client; Assign() never joins the group
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Error,
        }).Build();

    /// <summary>Assigns one partition at <paramref name="start"/> and reads <paramref name="count"/> records (bounded wait).</summary>
    private static List<ConsumeResult<string, string>> ConsumeFrom(MockKafkaCluster cluster, TopicPartitionOffset start, int count)
    {
        using var consumer = NewConsumer(cluster);
        consumer.Assign(start);
        var results = new List<ConsumeResult<string, string>>();
        var deadline = DateTime.UtcNow + Timeout;
        while (results.Count < count && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r)
                results.Add(r);
        }
        Assert.True(results.Count == count, $"consumed {results.Count} of {count} records within {Timeout}");
        consumer.Close();
        return results;
    }

    private static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }
}
