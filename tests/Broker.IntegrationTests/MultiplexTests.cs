using System.Text;
using System.Text.Json.Nodes;
using Broker.Core.Log;
using Broker.IntegrationTests.Infrastructure;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

/// <summary>A broker whose topics <c>user.&gt;</c> share one four-partition Kafka topic (a multiplexed namespace).</summary>
public sealed class MultiplexBrokerFixture : IAsyncLifetime
{
    public const string SharedTopic = "broker.users";
    public const int Partitions = 4;

    public TestBroker Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await TestBroker.StartAsync(hocon: $$"""
        broker.namespaces = [ { pattern = "user.>", kafka-topic = "{{SharedTopic}}", multiplex = true, partitions = {{Partitions}} } ]
        broker.fanout.recent-history.messages = 20
        """);

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

/// <summary>
/// Topics of a multiplexed namespace behave per broker topic: each subscriber gets exactly its
/// topic's messages in order, positions are offsets of the topic's partition, <c>since</c>,
/// <c>last</c> and <c>earliest</c> replay exactly, and a Kafka producer addresses one broker topic
/// by keying its record with the topic name.
/// </summary>
public sealed class MultiplexTests(MultiplexBrokerFixture fixture) : IClassFixture<MultiplexBrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    private static string NewTopic(string name) => $"user.{Guid.NewGuid():N}.{name}";

    private static int PartitionOf(string topic) => KafkaPartitioner.Partition(Encoding.UTF8.GetBytes(topic), MultiplexBrokerFixture.Partitions);

    private static long Offset(JsonNode? pos)
    {
        Assert.True(Position.TryParse((string)pos!, out var p));
        Assert.Equal(1, p.PartitionCount); // a multiplexed topic's position is one offset of its partition
        return p.NextOffset(0);
    }

    [Fact]
    public async Task Each_subscriber_gets_exactly_its_topics_messages_in_order_and_the_ack_position_is_the_messages()
    {
        var a = NewTopic("a");
        var b = NewTopic("b");
        await using var subA = await Broker.ConnectAsync();
        await using var subB = await Broker.ConnectAsync();
        await using var pub = await Broker.ConnectAsync();
        await subA.SubscribeAsync(a);
        await subB.SubscribeAsync(b);
        var acks = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            acks.Add(await pub.PublishAsync(a, new { i }, $"a{i}"));
            await pub.PublishAsync(b, new { i = 100 + i }, $"b{i}");
        }
        for (var i = 0; i < 10; i++)
        {
            var m = await subA.ExpectAsync("message");
            Assert.Equal(a, (string?)m["topic"]);
            Assert.Equal(i, (int)m["data"]!["i"]!);
            Assert.Equal(acks[i], (string?)m["pos"]);
            Assert.Equal(100 + i, (int)(await subB.ExpectAsync("message"))["data"]!["i"]!);
        }
        // Positions grow within the topic's partition.
        var offsets = acks.Select(p => Offset(p)).ToList();
        Assert.Equal(offsets.OrderBy(o => o), offsets);
        // The records are in the shared Kafka topic, keyed with the broker topic, in its partition.
        var records = KafkaRead.Partition(Broker.KafkaBootstrap, MultiplexBrokerFixture.SharedTopic, PartitionOf(a));
        Assert.Equal(10, records.Count(r => Encoding.UTF8.GetString(r.Message.Key!) == a));
    }

    [Fact]
    public async Task A_kafka_producer_addresses_one_broker_topic_by_keying_its_record_with_the_topic_name()
    {
        var target = NewTopic("kcat");
        var other = NewTopic("other");
        await using var subTarget = await Broker.ConnectAsync();
        await using var subOther = await Broker.ConnectAsync();
        await subTarget.SubscribeAsync(target);
        await subOther.SubscribeAsync(other);

        await Kcat.ProduceAsync(Broker.KafkaBootstrap, MultiplexBrokerFixture.SharedTopic,
            ["-k", target, "-X", "partitioner=murmur2_random"], """{"from":"kcat"}""");

        var m = await subTarget.ExpectAsync("message");
        Assert.Equal(target, (string?)m["topic"]);
        Assert.Equal("kcat", (string?)m["data"]!["from"]);
        Assert.Null(m["key"]); // the Kafka key is the topic, not a message key
        // The other topic's subscriber got nothing: a ping is answered before any message would be.
        await subOther.SendAsync(new { type = "ping", id = "p" });
        Assert.Equal("pong", (string?)(await subOther.ReceiveAsync())["type"]);
    }

    [Fact]
    public async Task Since_resumes_exactly_after_a_position_and_a_publish_key_is_the_message_key()
    {
        var topic = NewTopic("since");
        await using var pub = await Broker.ConnectAsync();
        var acks = new List<string>();
        for (var i = 0; i < 8; i++) acks.Add(await pub.PublishAsync(topic, new { i }, $"p{i}", key: $"k{i % 2}"));

        await using var sub = await Broker.ConnectAsync();
        var reply = await sub.SubscribeAsync(topic, "s", new { since = acks[4] });
        Assert.True((bool)reply["recovered"]!);
        for (var i = 5; i < 8; i++)
        {
            var m = await sub.ExpectAsync("message");
            Assert.Equal(i, (int)m["data"]!["i"]!);
            Assert.Equal(acks[i], (string?)m["pos"]);
            Assert.Equal($"k{i % 2}", (string?)m["key"]);
        }
        // Then live, with no gap and no duplicate.
        var live = await pub.PublishAsync(topic, new { i = 8 }, "p8");
        Assert.Equal(live, (string?)(await sub.ExpectAsync("message"))["pos"]);
    }

    [Fact]
    public async Task Last_n_is_answered_from_the_log_when_the_node_had_not_read_the_topic_and_from_memory_once_it_has()
    {
        // Written before anything on this node reads the topic: the history is in the log only.
        var topic = NewTopic("last");
        await using var pub = await Broker.ConnectAsync();
        for (var i = 0; i < 30; i++) await pub.PublishAsync(topic, new { i }, $"p{i}");

        await using var cold = await Broker.ConnectAsync();
        await cold.SubscribeAsync(topic, "s", new { last = 10 });
        for (var i = 20; i < 30; i++) Assert.Equal(i, (int)(await cold.ExpectAsync("message"))["data"]!["i"]!);

        for (var i = 30; i < 35; i++) await pub.PublishAsync(topic, new { i }, $"p{i}");
        for (var i = 30; i < 35; i++) Assert.Equal(i, (int)(await cold.ExpectAsync("message"))["data"]!["i"]!);

        // The node's feed has now delivered 30..34: a later `last: 3` is answered from its memory, and goes on live.
        await using var warm = await Broker.ConnectAsync();
        await warm.SubscribeAsync(topic, "s", new { last = 3 });
        for (var i = 32; i < 35; i++) Assert.Equal(i, (int)(await warm.ExpectAsync("message"))["data"]!["i"]!);
        await pub.PublishAsync(topic, new { i = 35 }, "p35");
        Assert.Equal(35, (int)(await warm.ExpectAsync("message"))["data"]!["i"]!);
        Assert.Equal(35, (int)(await cold.ExpectAsync("message"))["data"]!["i"]!);
    }

    [Fact]
    public async Task Earliest_delivers_only_the_topics_records_of_a_partition_shared_with_others()
    {
        var topic = NewTopic("earliest");
        // Another topic of the same partition writes in between.
        var neighbour = Enumerable.Range(0, 1000).Select(i => NewTopic($"n{i}")).First(t => PartitionOf(t) == PartitionOf(topic));
        await using var pub = await Broker.ConnectAsync();
        for (var i = 0; i < 5; i++)
        {
            await pub.PublishAsync(topic, new { i }, $"t{i}");
            await pub.PublishAsync(neighbour, new { i }, $"n{i}");
        }
        await using var sub = await Broker.ConnectAsync();
        await sub.SubscribeAsync(topic, "s", new { from = "earliest" });
        for (var i = 0; i < 5; i++)
        {
            var m = await sub.ExpectAsync("message");
            Assert.Equal(topic, (string?)m["topic"]);
            Assert.Equal(i, (int)m["data"]!["i"]!);
        }
        await sub.SendAsync(new { type = "ping", id = "p" });
        Assert.Equal("pong", (string?)(await sub.ReceiveAsync())["type"]);
    }

    [Fact]
    public async Task A_key_filter_applies_to_the_publish_key_live_and_in_history()
    {
        var topic = NewTopic("filter");
        await using var pub = await Broker.ConnectAsync();
        for (var i = 0; i < 6; i++) await pub.PublishAsync(topic, new { i }, $"p{i}", key: i % 2 == 0 ? "even" : "odd");
        await using var sub = await Broker.ConnectAsync();
        await sub.SubscribeAsync(topic, "s", new { key = "even", from = "earliest" });
        foreach (var i in new[] { 0, 2, 4 }) Assert.Equal(i, (int)(await sub.ExpectAsync("message"))["data"]!["i"]!);
        await pub.PublishAsync(topic, new { i = 7 }, "p7", key: "odd");
        await pub.PublishAsync(topic, new { i = 8 }, "p8", key: "even");
        Assert.Equal(8, (int)(await sub.ExpectAsync("message"))["data"]!["i"]!);
    }

    [Fact]
    public async Task A_retried_publish_is_written_once()
    {
        var topic = NewTopic("retry");
        var client = Guid.NewGuid().ToString("N");
        string first;
        await using (var pub = await Broker.ConnectAsync($"?client={client}")) first = await pub.PublishAsync(topic, new { n = 1 }, "same");
        await using (var again = await Broker.ConnectAsync($"?client={client}")) Assert.Equal(first, await again.PublishAsync(topic, new { n = 1 }, "same"));
        var records = KafkaRead.Partition(Broker.KafkaBootstrap, MultiplexBrokerFixture.SharedTopic, PartitionOf(topic));
        Assert.Single(records, r => Encoding.UTF8.GetString(r.Message.Key!) == topic);
    }

    [Fact]
    public async Task A_since_from_another_topic_shape_is_refused_and_a_topic_costs_no_kafka_topic()
    {
        var topic = NewTopic("shape");
        await using var sub = await Broker.ConnectAsync();
        var reply = await sub.RequestAsync(new { type = "subscribe", id = "s", topic, since = Position.Encode([1, 2]) }, "s");
        Assert.Equal("bad_request", (string?)reply["code"]);
        await sub.SubscribeAsync(topic);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Broker.KafkaBootstrap }).Build();
        var names = admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Select(t => t.Topic).ToList();
        Assert.Contains(MultiplexBrokerFixture.SharedTopic, names);
        Assert.DoesNotContain(names, n => n.StartsWith("user.", StringComparison.Ordinal));
    }
}
