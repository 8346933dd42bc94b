using System.Text;
using Broker.Client;
using Broker.Core.Log;
using Broker.IntegrationTests.Infrastructure;
using Broker.Protocol;
using Confluent.Kafka;
using StartFrom = Broker.Client.StartFrom;

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

    private static long Offset(string pos)
    {
        Assert.True(Position.TryParse(pos, out var p));
        Assert.Equal(1, p.PartitionCount); // a multiplexed topic's position is one offset of its partition
        return p.NextOffset(0);
    }

    private static IEnumerable<int> Is(IEnumerable<BrokerMessage> messages) => messages.Select(m => m.Int("i"));

    [Fact]
    public async Task Each_subscriber_gets_exactly_its_topics_messages_in_order_and_the_ack_position_is_the_messages()
    {
        var a = NewTopic("a");
        var b = NewTopic("b");
        await using var clientA = await Broker.ClientAsync();
        await using var clientB = await Broker.ClientAsync();
        await using var pub = await Broker.ClientAsync();
        var subA = await clientA.SubscribeWithinAsync(a);
        var subB = await clientB.SubscribeWithinAsync(b);
        var acks = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            acks.Add(await pub.PublishJsonAsync(a, new { i }));
            await pub.PublishJsonAsync(b, new { i = 100 + i });
        }
        var gotA = await subA.TakeAsync(10);
        Assert.All(gotA, m => Assert.Equal(a, m.Topic));
        Assert.Equal(Enumerable.Range(0, 10), Is(gotA));
        Assert.Equal(acks, gotA.Select(m => m.Pos));
        Assert.Equal(Enumerable.Range(100, 10), Is(await subB.TakeAsync(10)));
        await subA.AssertNothingMoreAsync(clientA);
        await subB.AssertNothingMoreAsync(clientB);
        // Positions grow within the topic's partition.
        var offsets = acks.Select(Offset).ToList();
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
        await using var clientTarget = await Broker.ClientAsync();
        await using var clientOther = await Broker.ClientAsync();
        var subTarget = await clientTarget.SubscribeWithinAsync(target);
        var subOther = await clientOther.SubscribeWithinAsync(other);

        await Kcat.ProduceAsync(Broker.KafkaBootstrap, MultiplexBrokerFixture.SharedTopic,
            ["-k", target, "-X", "partitioner=murmur2_random"], """{"from":"kcat"}""");

        var m = await subTarget.NextAsync();
        Assert.Equal(target, m.Topic);
        Assert.Equal("kcat", m.Str("from"));
        Assert.Null(m.Key); // the Kafka key is the topic, not a message key
        // The other topic's subscriber got nothing.
        await subOther.AssertNothingMoreAsync(clientOther);
    }

    [Fact]
    public async Task Since_resumes_exactly_after_a_position_and_a_publish_key_is_the_message_key()
    {
        var topic = NewTopic("since");
        await using var pub = await Broker.ClientAsync();
        var acks = new List<string>();
        for (var i = 0; i < 8; i++) acks.Add(await pub.PublishJsonAsync(topic, new { i }, key: $"k{i % 2}"));

        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Since = acks[4] });
        Assert.True(sub.Recovered);
        var history = await sub.TakeAsync(3);
        Assert.Equal([5, 6, 7], Is(history));
        Assert.Equal(acks[5..], history.Select(m => m.Pos));
        Assert.Equal(["k1", "k0", "k1"], history.Select(m => m.Key));
        // Then live, with no gap and no duplicate.
        var live = await pub.PublishJsonAsync(topic, new { i = 8 });
        Assert.Equal(live, (await sub.NextAsync()).Pos);
        await sub.AssertNothingMoreAsync(client);
    }

    [Fact]
    public async Task Last_n_is_answered_from_the_log_when_the_node_had_not_read_the_topic_and_from_memory_once_it_has()
    {
        // Written before anything on this node reads the topic: the history is in the log only.
        var topic = NewTopic("last");
        await using var pub = await Broker.ClientAsync();
        for (var i = 0; i < 30; i++) await pub.PublishJsonAsync(topic, new { i });

        await using var coldClient = await Broker.ClientAsync();
        var cold = await coldClient.SubscribeWithinAsync(topic, new SubscribeOptions { Last = 10 });
        Assert.Equal(Enumerable.Range(20, 10), Is(await cold.TakeAsync(10)));

        for (var i = 30; i < 35; i++) await pub.PublishJsonAsync(topic, new { i });
        Assert.Equal(Enumerable.Range(30, 5), Is(await cold.TakeAsync(5)));

        // The node's feed has now delivered 30..34: a later `last: 3` is answered from its memory, and goes on live.
        await using var warmClient = await Broker.ClientAsync();
        var warm = await warmClient.SubscribeWithinAsync(topic, new SubscribeOptions { Last = 3 });
        Assert.Equal(Enumerable.Range(32, 3), Is(await warm.TakeAsync(3)));
        await pub.PublishJsonAsync(topic, new { i = 35 });
        Assert.Equal(35, (await warm.NextAsync()).Int("i"));
        Assert.Equal(35, (await cold.NextAsync()).Int("i"));
        await warm.AssertNothingMoreAsync(warmClient);
        await cold.AssertNothingMoreAsync(coldClient);
    }

    [Fact]
    public async Task Earliest_delivers_only_the_topics_records_of_a_partition_shared_with_others()
    {
        var topic = NewTopic("earliest");
        // Another topic of the same partition writes in between.
        var neighbour = Enumerable.Range(0, 1000).Select(i => NewTopic($"n{i}")).First(t => PartitionOf(t) == PartitionOf(topic));
        await using var pub = await Broker.ClientAsync();
        for (var i = 0; i < 5; i++)
        {
            await pub.PublishJsonAsync(topic, new { i });
            await pub.PublishJsonAsync(neighbour, new { i });
        }
        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { From = StartFrom.Earliest });
        var history = await sub.TakeAsync(5);
        Assert.All(history, m => Assert.Equal(topic, m.Topic));
        Assert.Equal(Enumerable.Range(0, 5), Is(history));
        await sub.AssertNothingMoreAsync(client);
    }

    [Fact]
    public async Task A_key_filter_applies_to_the_publish_key_live_and_in_history()
    {
        var topic = NewTopic("filter");
        await using var pub = await Broker.ClientAsync();
        for (var i = 0; i < 6; i++) await pub.PublishJsonAsync(topic, new { i }, key: i % 2 == 0 ? "even" : "odd");
        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Key = "even", From = StartFrom.Earliest });
        Assert.Equal([0, 2, 4], Is(await sub.TakeAsync(3)));
        await pub.PublishJsonAsync(topic, new { i = 7 }, key: "odd");
        await pub.PublishJsonAsync(topic, new { i = 8 }, key: "even");
        Assert.Equal(8, (await sub.NextAsync()).Int("i"));
        await sub.AssertNothingMoreAsync(client);
    }

    /// <summary>A resend with a chosen request id, sent by hand: the protocol's rule (Broker.Client resends with ids of its own).</summary>
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
        await using var client = await Broker.ClientAsync();
        var refused = await Assert.ThrowsAsync<BrokerErrorException>(() => client.SubscribeWithinAsync(topic, new SubscribeOptions { Since = Position.Encode([1, 2]) }));
        Assert.Equal(BrokerErrorCodes.BadRequest, refused.Code);
        await client.SubscribeWithinAsync(topic);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Broker.KafkaBootstrap }).Build();
        var names = admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Select(t => t.Topic).ToList();
        Assert.Contains(MultiplexBrokerFixture.SharedTopic, names);
        Assert.DoesNotContain(names, n => n.StartsWith("user.", StringComparison.Ordinal));
    }
}
