using Broker.Client;
using Broker.IntegrationTests.Infrastructure;
using Broker.Protocol;
using StartFrom = Broker.Client.StartFrom;

namespace Broker.IntegrationTests;

/// <summary>The embedded log as a Kafka client (kcat) meets it: topics it writes to first, tombstones.</summary>
public sealed class EmbeddedLogTests(EmbeddedLogTests.TwoPartitions fixture) : IClassFixture<EmbeddedLogTests.TwoPartitions>
{
    /// <summary>A broker whose topics get two partitions (broker.kafka.partitions = 2).</summary>
    public sealed class TwoPartitions() : ConfiguredBrokerFixture(new Dictionary<string, string> { ["broker.kafka.partitions"] = "2" });

    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task A_topic_kcat_writes_to_first_gets_broker_kafka_partitions_partitions_not_the_mocks_four()
    {
        const string topic = "embedded.kcat-first";
        await Kcat.ProduceAsync(Broker.KafkaBootstrap, topic, ["-k", "a"], "{\"n\":1}");

        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { From = StartFrom.Earliest });
        Assert.True(Position.TryParse(sub.Head, out var head));
        Assert.Equal(2, head.PartitionCount);
        Assert.Equal(1, (await sub.NextAsync()).Int("n"));
    }

    [Fact]
    public async Task The_shared_topic_of_a_multiplexed_namespace_that_kcat_writes_to_first_gets_the_namespaces_partitions()
    {
        await using var broker = await TestBroker.StartAsync(hocon: """
            broker.namespaces = [ { pattern = "user.>", kafka-topic = "embedded.users", multiplex = true, partitions = 3 } ]
            """);
        // The README's line: a service keys its record with the broker topic (murmur2, as Java clients).
        await Kcat.ProduceAsync(broker.KafkaBootstrap, "embedded.users", ["-k", "user.7", "-X", "partitioner=murmur2_random"], "{\"n\":7}");

        using (var admin = new Confluent.Kafka.AdminClientBuilder(new Confluent.Kafka.AdminClientConfig { BootstrapServers = broker.KafkaBootstrap }).Build())
            Assert.Equal(3, Assert.Single(admin.GetMetadata("embedded.users", TimeSpan.FromSeconds(15)).Topics).Partitions.Count);
        await using var client = await broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync("user.7", new SubscribeOptions { From = StartFrom.Earliest });
        Assert.Equal(7, (await sub.NextAsync()).Int("n"));
    }

    [Fact]
    public async Task A_kcat_tombstone_with_Z_arrives_as_data_null_with_its_key()
    {
        const string topic = "embedded.tombstone";
        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic);

        // The README's line: -K : splits key and value, -Z sends the empty value as null.
        await Kcat.ProduceAsync(Broker.KafkaBootstrap, topic, ["-K", ":", "-Z"], "cust-1:");

        var message = await sub.NextAsync();
        Assert.Equal("cust-1", message.Key);
        Assert.Equal("null", System.Text.Encoding.UTF8.GetString(message.RawData.Span)); // "data": null, not absent
        Assert.Equal(System.Text.Json.JsonValueKind.Null, message.Data.ValueKind);
    }
}
