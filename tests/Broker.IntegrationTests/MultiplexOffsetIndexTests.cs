using System.Text;
using Broker.Client;
using Broker.Core.Fanout;
using Broker.Core.Log;
using Broker.IntegrationTests.Infrastructure;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

/// <summary>
/// A broker whose topics <c>ix.&gt;</c> share one four-partition Kafka topic, with no recent history
/// (so that <c>last: N</c> is answered by the offset index or the scan, never from memory), and a
/// namespace <c>ixs.&gt;</c> whose index holds only a few topics (so that it forgets some).
/// </summary>
public sealed class OffsetIndexBrokerFixture : IAsyncLifetime
{
    public const string SharedTopic = "broker.ix";
    public const string SmallTopic = "broker.ixs";
    public const int Partitions = 4;
    public const int SmallIndexTopics = 8;

    public TestBroker Broker { get; private set; } = null!;

    public FeedHub Feeds => Broker.App.Services.GetRequiredService<FeedHub>();

    public async Task InitializeAsync()
    {
        // The index's limits are per shared Kafka topic: the small one is a broker of its own.
        Broker = await TestBroker.StartAsync(hocon: $$"""
            broker.namespaces = [ { pattern = "ix.>", kafka-topic = "{{SharedTopic}}", multiplex = true, partitions = {{Partitions}} } ]
            broker.fanout.recent-history.messages = 0
            broker.fanout.offset-index.catch-up-wait = 20s
            """);
        Small = await TestBroker.StartAsync(hocon: $$"""
            broker.namespaces = [ { pattern = "ixs.>", kafka-topic = "{{SmallTopic}}", multiplex = true, partitions = {{Partitions}} } ]
            broker.fanout.recent-history.messages = 0
            broker.fanout.offset-index.max-topics = {{SmallIndexTopics}}
            broker.fanout.offset-index.catch-up-wait = 20s
            """);
        // The first publish of a namespace creates its shared Kafka topic; the node reads it from then on.
        foreach (var (broker, topic, shared) in new[] { (Broker, "ix.warmup", SharedTopic), (Small, "ixs.warmup", SmallTopic) })
        {
            await using var client = await broker.ClientAsync();
            await client.PublishJsonAsync(topic, new { i = 0 });
            var feeds = broker.App.Services.GetRequiredService<FeedHub>();
            await Wait.UntilAsync(() => feeds.IsReading(shared), $"the node reads {shared}");
        }
    }

    public TestBroker Small { get; private set; } = null!;

    public async Task DisposeAsync()
    {
        await Broker.DisposeAsync();
        await Small.DisposeAsync();
    }
}

/// <summary>
/// <c>last: N</c> of a multiplexed topic on a node that never had a subscriber of it: answered by
/// the node's offset index (only the topic's records are read), exactly the last N in order, then
/// live with no gap and no duplicate — also when other services wrote the records straight to Kafka,
/// and, through the scan, when the index forgot the topic.
/// </summary>
public sealed class MultiplexOffsetIndexTests(OffsetIndexBrokerFixture fixture) : IClassFixture<OffsetIndexBrokerFixture>
{
    private const int Partitions = OffsetIndexBrokerFixture.Partitions;

    private static string NewTopic(string prefix, string name) => $"{prefix}.{Guid.NewGuid():N}.{name}";

    private static int PartitionOf(string topic) => KafkaPartitioner.Partition(Encoding.UTF8.GetBytes(topic), Partitions);

    /// <summary><paramref name="count"/> other topics of <paramref name="topic"/>'s partition.</summary>
    private static List<string> Neighbours(string topic, int count) =>
        Enumerable.Range(0, 100_000).Select(i => NewTopic(topic[..topic.IndexOf('.')], $"n{i}")).Where(t => PartitionOf(t) == PartitionOf(topic)).Take(count).ToList();

    /// <summary>A fresh topic of <c>ix.&gt;</c> named <paramref name="name"/>, and <paramref name="neighbours"/> other topics of its partition.</summary>
    private static (string Topic, List<string> Others) TopicAmongOthers(string name, int neighbours)
    {
        var topic = NewTopic("ix", name);
        return (topic, Neighbours(topic, neighbours));
    }

    private static long Offset(string pos)
    {
        Assert.True(Position.TryParse(pos, out var p));
        return p.NextOffset(0) - 1;
    }

    private static IEnumerable<int> Is(IEnumerable<BrokerMessage> messages) => messages.Select(m => m.Int("i"));

    /// <summary>A producer writing straight to the log, keyed with broker topic names (murmur2, as any service addressing a broker topic would).</summary>
    private static IProducer<string, string> Producer(TestBroker broker) =>
        new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.KafkaBootstrap, Partitioner = Partitioner.Murmur2Random, Acks = Acks.All, LingerMs = 5 }).Build();

    /// <summary>Writes <paramref name="count"/> records spread over <paramref name="topics"/> and waits until all are in the log.</summary>
    private static void Fill(IProducer<string, string> producer, string kafkaTopic, IReadOnlyList<string> topics, int count)
    {
        var failed = 0;
        for (var i = 0; i < count; i++)
            producer.Produce(kafkaTopic, new Message<string, string> { Key = topics[i % topics.Count], Value = $$"""{"f":{{i}}}""" }, r => { if (r.Error.IsError) Interlocked.Increment(ref failed); });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, failed);
    }

    /// <summary>The offsets of <paramref name="topic"/>'s records in its partition, as the log holds them, and the partition's end.</summary>
    private static (List<long> Offsets, long High) InLog(TestBroker broker, string kafkaTopic, string topic)
    {
        var records = KafkaRead.Partition(broker.KafkaBootstrap, kafkaTopic, PartitionOf(topic));
        var high = records.Count == 0 ? 0 : records[^1].Offset.Value + 1;
        return (records.Where(r => r.Message.Key is { } k && Encoding.UTF8.GetString(k) == topic).Select(r => r.Offset.Value).ToList(), high);
    }

    private static Task<IndexAnswer> AskIndexAsync(FeedHub feeds, string kafkaTopic, string topic, int n, long high) =>
        feeds.LastOffsetsAsync(kafkaTopic, topic, PartitionOf(topic), n, 0, high, CancellationToken.None);

    /// <summary>
    /// The index's answer once it has one: on a loaded machine the feed may look stalled to a
    /// <c>last: N</c> (it then gets Unknown and the exact scan answers), so ask until it is Found.
    /// </summary>
    private static async Task<IndexAnswer> FoundAsync(FeedHub feeds, string kafkaTopic, string topic, int n, long high)
    {
        var answer = default(IndexAnswer);
        await Wait.UntilAsync(async () => (answer = await AskIndexAsync(feeds, kafkaTopic, topic, n, high)).Outcome == IndexLookup.Found,
            $"the offset index answers last {n} of {topic}");
        return answer;
    }

    [Fact]
    public async Task Last_n_is_exactly_the_topics_last_records_interleaved_with_and_buried_under_other_topics_then_live()
    {
        var broker = fixture.Broker;
        var (topic, others) = TopicAmongOthers("buried", 50);
        await using var pub = await broker.ClientAsync();
        using var producer = Producer(broker);
        var acks = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            acks.Add(await pub.PublishJsonAsync(topic, new { i }));
            Fill(producer, OffsetIndexBrokerFixture.SharedTopic, others, 300); // more than the coalescing gap between two of the topic's records
        }
        Fill(producer, OffsetIndexBrokerFixture.SharedTopic, others, 5000);

        var (offsets, high) = InLog(broker, OffsetIndexBrokerFixture.SharedTopic, topic);
        Assert.Equal(acks.Select(Offset), offsets);
        var answer = await FoundAsync(fixture.Feeds, OffsetIndexBrokerFixture.SharedTopic, topic, 10, high);
        Assert.Equal(offsets[20..], answer.Offsets);

        await using var client = await broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Last = 10 });
        var history = await sub.TakeAsync(10);
        Assert.All(history, m => Assert.Equal(topic, m.Topic));
        Assert.Equal(Enumerable.Range(20, 10), Is(history));
        Assert.Equal(acks[20..], history.Select(m => m.Pos));
        // Then live: the next message, once.
        var live = await pub.PublishJsonAsync(topic, new { i = 30 });
        var next = await sub.NextAsync();
        Assert.Equal((30, live), (next.Int("i"), next.Pos));
        await sub.AssertNothingMoreAsync(client);
    }

    [Fact]
    public async Task A_topic_with_fewer_than_n_records_gets_all_of_them_and_one_with_none_gets_none_then_live()
    {
        var broker = fixture.Broker;
        var few = NewTopic("ix", "few");
        var none = NewTopic("ix", "none");
        await using var pub = await broker.ClientAsync();
        using var producer = Producer(broker);
        for (var i = 0; i < 3; i++) await pub.PublishJsonAsync(few, new { i });
        Fill(producer, OffsetIndexBrokerFixture.SharedTopic, Neighbours(few, 20).Concat(Neighbours(none, 20)).ToList(), 2000);

        var (_, high) = InLog(broker, OffsetIndexBrokerFixture.SharedTopic, none);
        var answer = await FoundAsync(fixture.Feeds, OffsetIndexBrokerFixture.SharedTopic, none, 10, high);
        Assert.Empty(answer.Offsets); // known to have none

        await using var client = await broker.ClientAsync();
        var subFew = await client.SubscribeWithinAsync(few, new SubscribeOptions { Last = 10 });
        var subNone = await client.SubscribeWithinAsync(none, new SubscribeOptions { Last = 10 });
        Assert.Equal([0, 1, 2], Is(await subFew.TakeAsync(3)));
        await pub.PublishJsonAsync(few, new { i = 3 });
        await pub.PublishJsonAsync(none, new { i = 100 });
        Assert.Equal(3, (await subFew.NextAsync()).Int("i"));
        Assert.Equal(100, (await subNone.NextAsync()).Int("i")); // the first message of the topic is the live one
        await subFew.AssertNothingMoreAsync(client);
        await subNone.AssertNothingMoreAsync(client);
    }

    [Fact]
    public async Task Records_another_producer_wrote_after_the_node_started_are_found_through_the_index()
    {
        var broker = fixture.Broker;
        var (topic, others) = TopicAmongOthers("external", 30);
        using var producer = Producer(broker);
        for (var i = 0; i < 12; i++)
        {
            producer.Produce(OffsetIndexBrokerFixture.SharedTopic, new Message<string, string> { Key = topic, Value = $$"""{"i":{{i}}}""" });
            Fill(producer, OffsetIndexBrokerFixture.SharedTopic, others, 400);
        }

        var (offsets, high) = InLog(broker, OffsetIndexBrokerFixture.SharedTopic, topic);
        Assert.Equal(12, offsets.Count);
        var answer = await FoundAsync(fixture.Feeds, OffsetIndexBrokerFixture.SharedTopic, topic, 5, high);
        Assert.Equal(offsets[7..], answer.Offsets);

        await using var client = await broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Last = 5 });
        var history = await sub.TakeAsync(5);
        Assert.Equal(Enumerable.Range(7, 5), Is(history));
        Assert.Equal(offsets[7..], history.Select(m => Offset(m.Pos)));
        var written = await producer.ProduceAsync(OffsetIndexBrokerFixture.SharedTopic, new Message<string, string> { Key = topic, Value = """{"i":12}""" });
        var next = await sub.NextAsync();
        Assert.Equal((12, written.Offset.Value), (next.Int("i"), Offset(next.Pos)));
        await sub.AssertNothingMoreAsync(client);
    }

    [Fact]
    public async Task A_durable_session_stores_where_the_last_n_begin_and_without_a_commit_is_restored_from_there()
    {
        var broker = fixture.Broker;
        var (topic, others) = TopicAmongOthers("session", 10);
        var options = BrokerClients.Options(session: Guid.NewGuid().ToString("N"));
        await using var pub = await broker.ClientAsync();
        using var producer = Producer(broker);
        var acks = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            acks.Add(await pub.PublishJsonAsync(topic, new { i }));
            Fill(producer, OffsetIndexBrokerFixture.SharedTopic, others, 300);
        }
        await using (var client = await broker.ClientAsync(options))
        {
            var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Last = 2 });
            Assert.Equal(acks[4..], (await sub.TakeAsync(2)).Select(m => m.Pos));
        } // disposed without committing: the session keeps the subscription from where it started
        var later = await pub.PublishJsonAsync(topic, new { i = 6 });

        BrokerSubscription restored = null!;
        await using var again = await broker.ClientAsync(options, c => restored = c.Subscribe(topic));
        Assert.Equal([acks[4], acks[5], later], (await restored.TakeAsync(3)).Select(m => m.Pos));
        await restored.AssertNothingMoreAsync(again);
    }

    [Fact]
    public async Task A_topic_the_index_forgot_is_still_answered_exactly_by_scanning_the_log()
    {
        var broker = fixture.Small;
        var topic = NewTopic("ixs", "forgotten");
        var never = Neighbours(topic, 1)[0];
        await using var pub = await broker.ClientAsync();
        using var producer = Producer(broker);
        var acks = new List<string>();
        for (var i = 0; i < 5; i++) acks.Add(await pub.PublishJsonAsync(topic, new { i }));
        // Many more topics than the index holds are written after it: it forgets the topic.
        Fill(producer, OffsetIndexBrokerFixture.SmallTopic, Neighbours(topic, 4 * OffsetIndexBrokerFixture.SmallIndexTopics), 1000);

        var (_, high) = InLog(broker, OffsetIndexBrokerFixture.SmallTopic, topic);
        var feeds = broker.App.Services.GetRequiredService<FeedHub>();
        Assert.Equal(IndexLookup.Unknown, (await AskIndexAsync(feeds, OffsetIndexBrokerFixture.SmallTopic, topic, 3, high)).Outcome);
        // A topic never written may have been one the index forgot: it cannot say "none" either.
        Assert.Equal(IndexLookup.Unknown, (await AskIndexAsync(feeds, OffsetIndexBrokerFixture.SmallTopic, never, 3, high)).Outcome);

        await using var client = await broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Last = 3 });
        var subNever = await client.SubscribeWithinAsync(never, new SubscribeOptions { Last = 3 });
        var history = await sub.TakeAsync(3);
        Assert.Equal([2, 3, 4], Is(history));
        Assert.Equal(acks[2..], history.Select(m => m.Pos));
        await pub.PublishJsonAsync(topic, new { i = 5 });
        await pub.PublishJsonAsync(never, new { i = 50 });
        Assert.Equal(5, (await sub.NextAsync()).Int("i"));
        Assert.Equal(50, (await subNever.NextAsync()).Int("i"));
        await sub.AssertNothingMoreAsync(client);
        await subNever.AssertNothingMoreAsync(client);
    }
}
