using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.Client;
using Broker.Core.Log;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;
using Broker.IntegrationTests.Sessions;
using Broker.Protocol;
using Confluent.Kafka;
using StartFrom = Broker.Client.StartFrom;

namespace Broker.IntegrationTests;

/// <summary>
/// Three nodes on one Kafka-protocol log whose default-mapped topics have four partitions, with a
/// SQLite session store shared by the nodes (for the durable-session test).
/// </summary>
public sealed class MultiPartitionClusterFixture : IAsyncLifetime
{
    private readonly SqliteStore _store = new();

    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var settings = _store.Overrides;
        settings["broker.kafka.partitions"] = MultiPartitionTests.Partitions.ToString();
        settings["broker.sessions.request-timeout"] = "3s";
        Cluster = await TestCluster.StartAsync(3, settings);
    }

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync(); // null when the start failed
        _store.Dispose();
    }
}

/// <summary>
/// Topics whose Kafka topic has four partitions, across a cluster: keyed messages go to their
/// murmur2 partition and keep their order, positions are vectors of one offset per partition,
/// and every replay (<c>since</c> from any node, <c>last</c>, <c>earliest</c>, durable sessions)
/// delivers exactly the right messages of every partition.
/// </summary>
public sealed class MultiPartitionTests(MultiPartitionClusterFixture fixture) : IClassFixture<MultiPartitionClusterFixture>
{
    /// <summary>Eight keys whose murmur2 partitions (of four) are 1, 0, 2, 3, 1, 0, 0, 3: every partition gets some.</summary>
    private static readonly string[] Keys = [.. Enumerable.Range(0, 8).Select(i => $"key-{i}")];

    private TestCluster Cluster => fixture.Cluster;
    private TestBroker Node(int i) => Cluster.Nodes[i];
    private string Bootstrap => Cluster.Kafka.BootstrapServers;

    private static string NewTopic(string name) => $"mp.{name}-{Guid.NewGuid():N}";

    [Fact]
    public async Task Keyed_messages_from_publishers_on_every_node_and_a_kafka_producer_reach_every_node_once_in_per_key_order()
    {
        var topic = NewTopic("order");
        string[] wsKeys = [.. Enumerable.Range(0, 9).Select(i => $"key-{i}")];
        string[] extKeys = ["ext-0", "ext-1", "ext-2", "ext-3"];
        const int perWsKey = 50, perExtKey = 25;
        Assert.Equal(Partitions, wsKeys.Select(KeyPartition).Distinct().Count()); // the test data covers every partition

        var clients = new List<BrokerClient>();
        try
        {
            var starts = new List<Position>();
            var subs = new List<BrokerSubscription>();
            var pubs = new List<BrokerClient>();
            for (var i = 0; i < 3; i++)
            {
                var client = await Node(i).ClientAsync();
                clients.Add(client);
                subs.Add(await client.SubscribeWithinAsync(topic));
                starts.Add(Pos(subs[i].Head));
                var pub = await Node(i).ClientAsync();
                clients.Add(pub);
                pubs.Add(pub);
            }

            // Publisher i owns keys i, i+3, i+6 and sends them interleaved; a Kafka producer writes its own keys meanwhile.
            var wsSends = Enumerable.Range(0, 3).Select(i =>
                PublishAll(pubs[i], topic, Interleaved([.. wsKeys.Where((_, k) => k % 3 == i)], 0, perWsKey))).ToList();
            using var producer = new ProducerBuilder<string, string>(new ProducerConfig
            {
                BootstrapServers = Bootstrap,
                Acks = Acks.All,
                EnableIdempotence = true,
                Partitioner = Partitioner.Murmur2Random, // the Java client's partitioner, as the broker's
            }).Build();
            var extRecords = Interleaved(extKeys, 0, perExtKey);
            var extDeliveries = extRecords.Select(r => producer.ProduceAsync(topic, new Message<string, string>
            {
                Key = r.Key!,
                Value = $"{{\"key\":\"{r.Key}\",\"seq\":{r.Seq}}}",
            })).ToList();
            await Task.WhenAll(wsSends);
            var delivered = await Task.WhenAll(extDeliveries).WaitAsync(TimeSpan.FromSeconds(30));
            foreach (var d in delivered) Assert.Equal(KeyPartition(d.Message.Key), d.Partition.Value); // the test's murmur2 is Kafka's

            var expected = wsKeys.SelectMany(k => Enumerable.Range(0, perWsKey).Select(s => LabelOf(k, s)))
                .Concat(extRecords.Select(r => LabelOf(r.Key, r.Seq))).ToList();

            // The Kafka topic really has four partitions and every key went to its murmur2 partition.
            var kafka = ReadTopic(Bootstrap, topic);
            Assert.Equal(expected.Order(), kafka.Keys.Order());
            Assert.Equal(Partitions, kafka.Values.Select(r => r.Partition).Distinct().Count());
            foreach (var (label, record) in kafka) Assert.True(KeyPartition(KeyOf(label)!) == record.Partition, $"{label} is in partition {record.Partition}");

            var received = await Task.WhenAll(subs.Select(s => Receive(s, expected.Count)));
            for (var i = 0; i < 3; i++)
            {
                AssertExactlyInKeyOrder(expected, received[i]);
                AssertStream(starts[i], received[i], kafka);
                await AssertNothingMore(subs[i], clients[2 * i]);
            }
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Since_a_position_from_one_node_resumes_on_another_exactly_after_it_in_every_partition_then_live()
    {
        var topic = NewTopic("since");
        await using var clientA = await Node(0).ClientAsync();
        var onA = await clientA.SubscribeWithinAsync(topic);
        var startA = Pos(onA.Head);
        await using (var pub = await Node(2).ClientAsync())
            await PublishAll(pub, topic, Interleaved(Keys, 0, 15));
        var seenByA = await Receive(onA, 8 * 15);
        AssertStream(startA, seenByA);

        // A has processed its first 50 messages (some of every partition, in node A's interleaving).
        const int processed = 50;
        var resumeFrom = seenByA[processed - 1].Pos;
        await using (var pub = await Node(0).ClientAsync())
            await PublishAll(pub, topic, Interleaved(Keys, 15, 15));

        await using var clientB = await Node(1).ClientAsync();
        // Since wins over Last (the client sends since only; Broker.Tests' StartOffsetTests: the broker's rule is the same).
        var onB = await clientB.SubscribeWithinAsync(topic, new SubscribeOptions { Since = resumeFrom, Last = 1 });
        Assert.True(onB.Recovered);
        Pos(onB.Head);
        var expected = seenByA.Skip(processed).Select(Label).Concat(Interleaved(Keys, 15, 15).Select(r => LabelOf(r.Key, r.Seq))).ToList();
        var history = await Receive(onB, expected.Count);
        AssertExactlyInKeyOrder(expected, history);
        var last = AssertStream(Pos(resumeFrom), history, ReadTopic(Bootstrap, topic));

        // Then live, once.
        await using (var pub = await Node(1).ClientAsync())
            await PublishAll(pub, topic, Interleaved(Keys, 30, 3));
        var live = await Receive(onB, 8 * 3);
        AssertExactlyInKeyOrder(Interleaved(Keys, 30, 3).Select(r => LabelOf(r.Key, r.Seq)), live);
        AssertStream(last, live);
        await AssertNothingMore(onB, clientB);
    }

    [Fact]
    public async Task Subscribed_pos_is_the_head_of_every_partition_and_resuming_from_it_delivers_exactly_what_was_published_after()
    {
        var topic = NewTopic("head");
        await using (var pub = await Node(1).ClientAsync())
            await PublishAll(pub, topic, Interleaved(Keys, 0, 5));
        await using var liveClient = await Node(0).ClientAsync();
        var live = await liveClient.SubscribeWithinAsync(topic);
        var head = Pos(live.Head);
        Assert.Equal(HighWatermarks(Bootstrap, topic), Vector(head));

        var after = Interleaved(Keys, 5, 5);
        await using (var pub = await Node(2).ClientAsync())
            await PublishAll(pub, topic, after);
        var kafka = ReadTopic(Bootstrap, topic);
        var expected = after.Select(r => LabelOf(r.Key, r.Seq)).ToList();

        var liveMessages = await Receive(live, expected.Count);
        AssertExactlyInKeyOrder(expected, liveMessages);
        AssertStream(head, liveMessages, kafka);

        await using var resumedClient = await Node(1).ClientAsync();
        var resumed = await resumedClient.SubscribeWithinAsync(topic, new SubscribeOptions { Since = head.Encode() });
        Assert.True(resumed.Recovered);
        var history = await Receive(resumed, expected.Count);
        AssertExactlyInKeyOrder(expected, history);
        AssertStream(head, history, kafka);
        await AssertNothingMore(resumed, resumedClient);
        await AssertNothingMore(live, liveClient);
    }

    [Fact]
    public async Task Last_N_delivers_the_N_latest_messages_of_all_partitions_in_per_key_order_then_live()
    {
        var topic = NewTopic("last");
        const int n = 25;
        // One publisher, in waves: the timestamps of each partition's records only grow.
        await using var pub = await Node(0).ClientAsync();
        for (var wave = 0; wave < 3; wave++) await PublishAll(pub, topic, Interleaved(Keys, wave * 5, 5));
        var kafka = ReadTopic(Bootstrap, topic);
        Assert.Equal(8 * 15, kafka.Count);

        await using var client = await Node(1).ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Last = n });
        Pos(sub.Head);
        var history = await Receive(sub, n);
        var labels = history.Select(Label).ToList();
        Assert.Equal(n, labels.Distinct().Count());
        foreach (var m in history)
        {
            Assert.True(kafka.TryGetValue(Label(m), out var r), $"{Label(m)} was never published");
            var pos = Pos(m.Pos);
            Assert.True(pos.NextOffset(r.Partition) == r.Offset + 1, $"{Label(m)} (partition {r.Partition}, offset {r.Offset}) has pos {Show(pos)}");
            Assert.Equal(r.Timestamp, m.TimestampMs);
        }
        AssertPerKeyOrder(history);
        var oldestReceived = history.Min(m => m.TimestampMs);
        var newestLeftOut = kafka.Where(kv => !labels.Contains(kv.Key)).Max(kv => kv.Value.Timestamp);
        Assert.True(oldestReceived >= newestLeftOut, $"a message with ts {newestLeftOut} was left out while one with ts {oldestReceived} was delivered");

        // Then live, from where the history ended: nothing twice, nothing skipped.
        var more = Interleaved(Keys, 15, 2);
        await PublishAll(pub, topic, more);
        var live = await Receive(sub, more.Count);
        AssertExactlyInKeyOrder(more.Select(r => LabelOf(r.Key, r.Seq)), live);
        AssertStream(Pos(history[^1].Pos), live);
        await AssertNothingMore(sub, client);
    }

    [Fact]
    public async Task Earliest_delivers_every_message_of_every_partition_then_live_without_duplicates()
    {
        var topic = NewTopic("earliest");
        // Keyed messages from two nodes and keyless ones (a random partition each) from a third.
        var first = Interleaved(Keys[..4], 0, 10);
        var second = Interleaved(Keys[4..], 0, 10);
        List<(string? Key, int Seq)> keyless = [.. Enumerable.Range(0, 10).Select(s => ((string?)null, s))];
        await using var pubA = await Node(0).ClientAsync();
        await using var pubB = await Node(1).ClientAsync();
        await using var pubC = await Node(2).ClientAsync();
        await Task.WhenAll(PublishAll(pubA, topic, first), PublishAll(pubB, topic, second), PublishAll(pubC, topic, keyless));
        var kafka = ReadTopic(Bootstrap, topic);
        var expected = first.Concat(second).Concat(keyless).Select(r => LabelOf(r.Key, r.Seq)).ToList();
        Assert.Equal(expected.Order(), kafka.Keys.Order());

        await using var client = await Node(2).ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { From = StartFrom.Earliest });
        var history = await Receive(sub, expected.Count);
        AssertExactlyInKeyOrder(expected, history);
        var last = AssertStream(new Position(new long[Partitions]), history, kafka);

        var more = Interleaved(Keys, 10, 3);
        await PublishAll(pubA, topic, more);
        var live = await Receive(sub, more.Count);
        AssertExactlyInKeyOrder(more.Select(r => LabelOf(r.Key, r.Seq)), live);
        AssertStream(last, live);
        await AssertNothingMore(sub, client);
    }

    [Fact]
    public async Task A_durable_session_commits_a_multi_partition_position_and_resumes_after_it_on_another_node()
    {
        // Three nodes open one SQLite store at once: a node whose store is still initialising answers `unavailable`.
        foreach (var node in Cluster.Nodes) await StoreReady(node);
        var session = $"mp-session-{Guid.NewGuid():N}";
        var topic = NewTopic("session");
        await using var publisher = await Node(1).ClientAsync();
        var options = BrokerClients.Options(session: session);

        List<BrokerMessage> seen;
        const int committed = 20;
        await using (var first = await Node(0).ClientAsync(options))
        {
            var sub = await first.SubscribeWithinAsync(topic);
            var start = Pos(sub.Head);
            await PublishAll(publisher, topic, Interleaved(Keys, 0, 5));
            seen = await Receive(sub, 8 * 5);
            AssertStream(start, seen);
            await sub.CommitAsync(seen[committed - 1]);
            await first.PingAsync(); // requests are handled in order: the commit is stored
        }
        // Published while the session is away.
        var away = Interleaved(Keys, 5, 5);
        await PublishAll(publisher, topic, away);

        BrokerSubscription restored = null!;
        var resumes = new System.Collections.Concurrent.ConcurrentQueue<SubscriptionResumedEventArgs>();
        await using var second = await Node(2).ClientAsync(options, c =>
        {
            restored = c.Subscribe(topic);
            restored.Resumed += (_, e) => resumes.Enqueue(e);
        });
        var expected = seen.Skip(committed).Select(Label).Concat(away.Select(r => LabelOf(r.Key, r.Seq))).ToList();
        var resumed = await Receive(restored, expected.Count);
        Assert.Contains(resumes, e => e is { RestoredBySession: true, Recovered: true });
        Pos(restored.Head);
        AssertExactlyInKeyOrder(expected, resumed);
        AssertStream(Pos(seen[committed - 1].Pos), resumed, ReadTopic(Bootstrap, topic));
        await AssertNothingMore(restored, second);
    }

    /// <summary>A session subscribe on <paramref name="node"/> succeeds (the client retries <c>unavailable</c> until the store answers).</summary>
    private static async Task StoreReady(TestBroker node)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var probe = await node.ClientAsync(BrokerClients.Options(session: $"probe-{Guid.NewGuid():N}"));
        await probe.SubscribeAsync("store.ready", cancellationToken: deadline.Token);
    }

    // ---- helpers shared with the single-broker tests below ----

    internal const int Partitions = 4;

    /// <summary>The partition Kafka's default partitioner (murmur2, as the broker's) gives a key.</summary>
    internal static int KeyPartition(string key) => KafkaPartitioner.Partition(Encoding.UTF8.GetBytes(key), Partitions);

    /// <summary>(key, seq) for seq in [from, from + count), the keys interleaved.</summary>
    internal static List<(string? Key, int Seq)> Interleaved(IReadOnlyList<string> keys, int from, int count) =>
        [.. Enumerable.Range(from, count).SelectMany(s => keys.Select(k => ((string?)k, s)))];

    internal static string LabelOf(string? key, int seq) => $"{key ?? "-"}/{seq}";

    internal static string? KeyOf(string label) => label[..label.LastIndexOf('/')] is var k && k != "-" ? k : null;

    /// <summary>The label of a message (from its data: key and seq), checking the message's key is the data's.</summary>
    internal static string Label(BrokerMessage m)
    {
        var key = m.Data.GetProperty("key").GetString();
        Assert.True(key == m.Key, "the message's key is not the published one: " + m);
        return LabelOf(key, m.Int("seq"));
    }

    internal static Position Pos(string? text, int partitions = Partitions)
    {
        Assert.True(text is not null, "no pos");
        Assert.True(Position.TryParse(text, out var pos), $"not a position: {text}");
        Assert.True(pos.PartitionCount == partitions, $"pos {Show(pos)} has {pos.PartitionCount} partitions, not {partitions}");
        return pos;
    }

    internal static long[] Vector(Position p) => [.. Enumerable.Range(0, p.PartitionCount).Select(p.NextOffset)];

    internal static string Show(Position p) => "[" + string.Join(",", Vector(p)) + "]";

    /// <summary>
    /// Publishes every (key, seq) pipelined (all sent before the acks are awaited) with data
    /// {key, seq}; waits for every ack and checks its pos is a vector of <paramref name="partitions"/>.
    /// </summary>
    internal static async Task PublishAll(BrokerClient pub, string topic, IReadOnlyList<(string? Key, int Seq)> records, int partitions = Partitions)
    {
        using var cts = new CancellationTokenSource(BrokerClients.Timeout);
        var acks = await Task.WhenAll(records.Select(r =>
            pub.PublishAsync(topic, JsonSerializer.SerializeToElement(new { key = r.Key, seq = r.Seq }), r.Key, cts.Token)).ToList());
        foreach (var ack in acks) Pos(ack.Pos, partitions);
        Assert.Equal(acks.Length, acks.Select(a => a.Pos).Distinct().Count()); // each at its own position
    }

    /// <summary>The next <paramref name="count"/> messages.</summary>
    internal static Task<List<BrokerMessage>> Receive(BrokerSubscription sub, int count) => sub.TakeAsync(count);

    /// <summary>Nothing more was delivered: a ping is answered with no message before it.</summary>
    internal static Task AssertNothingMore(BrokerSubscription sub, BrokerClient client) => sub.AssertNothingMoreAsync(client);

    /// <summary>Exactly the expected messages (each once, none missing, none other), every key's in seq order.</summary>
    internal static void AssertExactlyInKeyOrder(IEnumerable<string> expected, IReadOnlyList<BrokerMessage> received)
    {
        var labels = received.Select(Label).ToList();
        var duplicates = labels.GroupBy(l => l).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, "delivered more than once: " + string.Join(" ", duplicates.Take(20)));
        var want = expected.ToHashSet();
        var missing = want.Except(labels).ToList();
        var extra = labels.Except(want).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0,
            $"missing {missing.Count}: {string.Join(" ", missing.Take(20))}; unexpected {extra.Count}: {string.Join(" ", extra.Take(20))}");
        AssertPerKeyOrder(received);
    }

    /// <summary>The messages of every key come in increasing seq order.</summary>
    internal static void AssertPerKeyOrder(IReadOnlyList<BrokerMessage> received)
    {
        foreach (var group in received.Select(Label).GroupBy(KeyOf).Where(g => g.Key is not null))
        {
            var seqs = group.Select(l => int.Parse(l[(l.LastIndexOf('/') + 1)..])).ToList();
            Assert.True(seqs.SequenceEqual(seqs.Order()), $"key {group.Key} out of order: {string.Join(",", seqs)}");
        }
    }

    /// <summary>
    /// Checks that every message's pos is the subscriber's progress: the previous pos (the first
    /// message: <paramref name="start"/>) with only the message's own partition advanced, by one,
    /// that partition being the key's murmur2 partition and, when <paramref name="kafka"/> is
    /// given, the record's partition and offset in Kafka (and ts its timestamp). Returns the last pos.
    /// </summary>
    internal static Position AssertStream(Position start, IReadOnlyList<BrokerMessage> messages, IReadOnlyDictionary<string, KafkaRecord>? kafka = null)
    {
        var prev = start;
        foreach (var m in messages)
        {
            var label = Label(m);
            var pos = Pos(m.Pos, start.PartitionCount);
            var changed = Enumerable.Range(0, pos.PartitionCount).Where(p => pos.NextOffset(p) != prev.NextOffset(p)).ToArray();
            Assert.True(changed.Length == 1 && pos.NextOffset(changed[0]) == prev.NextOffset(changed[0]) + 1,
                $"{label}: pos {Show(pos)} after {Show(prev)} is not the previous progress advanced by one in the message's partition");
            var partition = changed[0];
            if (KeyOf(label) is { } key)
                Assert.True(KeyPartition(key) == partition, $"{label} came from partition {partition}, not its key's murmur2 partition {KeyPartition(key)}");
            if (kafka is not null)
            {
                Assert.True(kafka.TryGetValue(label, out var r), $"{label} is not in the Kafka topic");
                Assert.True(r.Partition == partition && r.Offset + 1 == pos.NextOffset(partition),
                    $"{label} is record {r.Partition}@{r.Offset} but has pos {Show(pos)}");
                Assert.Equal(r.Timestamp, m.TimestampMs);
            }
            prev = pos;
        }
        return prev;
    }

    internal sealed record KafkaRecord(int Partition, long Offset, long Timestamp);

    /// <summary>Partitions of a Kafka topic, from metadata (a consumer does not create topics by asking).</summary>
    internal static int PartitionCount(string bootstrap, string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "mp-meta-" + Guid.NewGuid() }).Build();
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        var meta = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single(t => t.Topic == topic);
        Assert.False(meta.Error.IsError, $"{topic}: {meta.Error}");
        return meta.Partitions.Count;
    }

    internal static long[] HighWatermarks(string bootstrap, string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "mp-wm-" + Guid.NewGuid() }).Build();
        return [.. Enumerable.Range(0, Partitions).Select(p => consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10)).High.Value)];
    }

    /// <summary>Every retained record of the topic straight from Kafka, by label (data {key, seq}), checking it has four partitions.</summary>
    internal static Dictionary<string, KafkaRecord> ReadTopic(string bootstrap, string topic)
    {
        Assert.Equal(Partitions, PartitionCount(bootstrap, topic));
        using var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "mp-read-" + Guid.NewGuid(),
            EnableAutoCommit = false,
        }).Build();
        var from = new List<TopicPartitionOffset>();
        long total = 0;
        for (var p = 0; p < Partitions; p++)
        {
            var tp = new TopicPartition(topic, p);
            var wm = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
            total += wm.High.Value - wm.Low.Value;
            from.Add(new TopicPartitionOffset(tp, wm.Low));
        }
        consumer.Assign(from);
        var records = new Dictionary<string, KafkaRecord>();
        while (records.Count < total)
        {
            var r = consumer.Consume(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException($"read {records.Count} of {total} records of {topic}");
            var data = JsonNode.Parse(r.Message.Value)!;
            var label = LabelOf((string?)data["key"], (int)data["seq"]!);
            Assert.True(records.TryAdd(label, new KafkaRecord(r.Partition.Value, r.Offset.Value, r.Message.Timestamp.UnixTimestampMs)), $"{label} is in the log twice");
        }
        return records;
    }
}

/// <summary>One broker (with its embedded log) where the topics of namespace <c>mp.&gt;</c> have four partitions.</summary>
public sealed class MultiPartitionNamespaceFixture : IAsyncLifetime
{
    public TestBroker Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await TestBroker.StartAsync(hocon: """
        broker.namespaces = [
          { pattern = "mp.>", partitions = 4 }
        ]
        """);

    public async Task DisposeAsync()
    {
        if (Broker is not null) await Broker.DisposeAsync(); // null when the start failed
    }
}

/// <summary>A namespace with <c>partitions = 4</c>, and retention deleting records of one partition.</summary>
public sealed class MultiPartitionNamespaceTests(MultiPartitionNamespaceFixture fixture) : IClassFixture<MultiPartitionNamespaceFixture>
{
    private static readonly string[] Keys = [.. Enumerable.Range(0, 8).Select(i => $"key-{i}")];

    private TestBroker Broker => fixture.Broker;

    private MockKafkaCluster Kafka => Broker.App.Services.GetRequiredService<MockKafkaCluster>();

    [Fact]
    public async Task A_namespace_with_four_partitions_is_accepted_and_its_kafka_topics_have_four_partitions()
    {
        var topic = $"mp.meta-{Guid.NewGuid():N}";
        var plain = $"plain.meta-{Guid.NewGuid():N}"; // default mapping: broker.kafka.partitions = 1
        await using var client = await Broker.ClientAsync();
        MultiPartitionTests.Pos(await client.PublishJsonAsync(topic, new { key = "key-0", seq = 0 }, key: "key-0"), MultiPartitionTests.Partitions);
        MultiPartitionTests.Pos(await client.PublishJsonAsync(plain, new { key = "key-0", seq = 0 }, key: "key-0"), 1);
        Assert.Equal(MultiPartitionTests.Partitions, MultiPartitionTests.PartitionCount(Broker.KafkaBootstrap, topic));
        Assert.Equal(1, MultiPartitionTests.PartitionCount(Broker.KafkaBootstrap, plain));
    }

    [Fact]
    public async Task Since_a_position_whose_records_retention_deleted_in_one_partition_is_not_recovered_and_the_others_are_exact()
    {
        var topic = $"mp.retention-{Guid.NewGuid():N}";
        await using var readerClient = await Broker.ClientAsync();
        var reader = await readerClient.SubscribeWithinAsync(topic);
        var start = MultiPartitionTests.Pos(reader.Head);
        await using var pub = await Broker.ClientAsync();
        var early = MultiPartitionTests.Interleaved(Keys, 0, 5);
        await MultiPartitionTests.PublishAll(pub, topic, early);
        var seen = await MultiPartitionTests.Receive(reader, early.Count);
        var pos = MultiPartitionTests.AssertStream(start, seen);
        Assert.Equal(MultiPartitionTests.HighWatermarks(Broker.KafkaBootstrap, topic), MultiPartitionTests.Vector(pos));

        var later = MultiPartitionTests.Interleaved(Keys, 5, 10);
        await MultiPartitionTests.PublishAll(pub, topic, later);
        var kafka = MultiPartitionTests.ReadTopic(Broker.KafkaBootstrap, topic);

        // Retention deletes the first 10 records after pos in the partition with the most of them (three keys: 30 records).
        var pruned = kafka.Values.Where(r => r.Offset >= pos.NextOffset(r.Partition)).GroupBy(r => r.Partition).MaxBy(g => g.Count())!.Key;
        var cut = pos.NextOffset(pruned) + 10;
        Kafka.DeleteRecords(topic, pruned, cut);
        var expected = later.Select(r => MultiPartitionTests.LabelOf(r.Key, r.Seq))
            .Where(l => kafka[l].Partition != pruned || kafka[l].Offset >= cut).ToList();
        Assert.Equal(later.Count - 10, expected.Count);

        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Since = pos.Encode() });
        Assert.False(sub.Recovered);
        var resumed = await MultiPartitionTests.Receive(sub, expected.Count);
        Assert.True(resumed[0].AfterGap);
        MultiPartitionTests.AssertExactlyInKeyOrder(expected, resumed);
        // The pruned partition starts at its oldest retained record; the others right after pos.
        var from = MultiPartitionTests.Vector(pos);
        from[pruned] = cut;
        MultiPartitionTests.AssertStream(new Position(from), resumed, kafka);
        await MultiPartitionTests.AssertNothingMore(sub, client);
    }
}
