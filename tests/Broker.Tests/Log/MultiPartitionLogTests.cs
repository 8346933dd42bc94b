using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using System.Text;
using Broker.Core.Log;
using Broker.Tests.Infrastructure;
using Confluent.Kafka;

namespace Broker.Tests.Log;

/// <summary>Feeds and catch-up reads of topics with several partitions, against the embedded Kafka-protocol log.</summary>
public sealed class MultiPartitionLogTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const int Partitions = 4;

    private readonly EmbeddedLogNode _node = new(s => s with { PartitionRefresh = TimeSpan.FromMilliseconds(200) });
    private readonly FeedHub _hub;
    private readonly CatchUpReader _replay;
    private readonly IProducer<byte[]?, byte[]?> _producer;
    private readonly long _t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public MultiPartitionLogTests()
    {
        _hub = _node.Hub(partitionCount: (t, ct) => _node.Log.PartitionCountAsync(t, ct));
        _replay = _node.Reader();
        _producer = new ProducerBuilder<byte[]?, byte[]?>(KafkaLog.ProducerConfig(_node.Settings)).Build();
    }

    /// <summary>
    /// Writes record n (data {"p":partition,"n":n}) to <paramref name="partition"/> with the timestamp
    /// t0 + <paramref name="ts"/> ms, one after the other so each partition's order is the writing order.
    /// </summary>
    private async Task Write(string topic, params (int Partition, long N, long Ts)[] records)
    {
        foreach (var (partition, n, ts) in records)
        {
            await _producer.ProduceAsync(new TopicPartition(topic, partition), new Message<byte[]?, byte[]?>
            {
                Value = Encoding.UTF8.GetBytes($$"""{"p":{{partition}},"n":{{n}}}"""),
                Timestamp = new Timestamp(_t0 + ts, TimestampType.CreateTime),
            }).WaitAsync(Timeout);
        }
    }

    /// <summary>Records 0..count-1 spread over the partitions in a scrambled but fixed way, record n written at t0 + 10·n.</summary>
    private static (int Partition, long N, long Ts)[] Scrambled(int count, int seed = 7)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(n => (random.Next(Partitions), (long)n, 10L * n))];
    }

    private string NewTopic()
    {
        var topic = "mp-" + Guid.NewGuid().ToString("N")[..8];
        _node.Cluster.CreateTopic(topic, Partitions);
        return topic;
    }

    private async Task<long[]> Heads(string topic) => (await _node.Log.QueryHeadsAsync(topic).WaitAsync(Timeout)).High;

    /// <summary>Each frame's position is the previous one with exactly its own partition advanced by one.</summary>
    private static void AssertCumulative(long[] start, IReadOnlyList<RecordedFrame> frames)
    {
        var expected = (long[])start.Clone();
        foreach (var f in frames)
        {
            expected[f.P]++;
            Assert.Equal(expected, f.Pos);
        }
    }

    /// <summary>The partition-wise maximum of <paramref name="start"/> and the frames' positions (which may name fewer partitions).</summary>
    private static long[] Furthest(long[] start, IEnumerable<RecordedFrame> frames)
    {
        var max = (long[])start.Clone();
        foreach (var f in frames)
            for (var p = 0; p < f.Pos.Length; p++) max[p] = Math.Max(max[p], f.Pos[p]);
        return max;
    }

    [Fact]
    public async Task Catch_up_merges_the_partitions_by_timestamp_and_positions_count_every_partition()
    {
        var topic = NewTopic();
        var records = Scrambled(40);
        // A tie across partitions: the lower partition comes first whatever the writing order.
        records[20] = (3, 20, 195);
        records[21] = (1, 21, 195);
        await Write(topic, records);
        var high = await Heads(topic);
        Assert.Equal(40, high.Sum());
        Assert.True(high.Count(h => h > 0) > 1, "the records should be spread over several partitions");

        var sub = new FrameRecorder();
        using var cts = new CancellationTokenSource(Timeout);
        await _replay.ReadAsync(topic, topic, new long[Partitions], high, sub.WriteHistory, cts.Token);

        long[] expected = [.. Enumerable.Range(0, 40).Select(i => (long)i)];
        (expected[20], expected[21]) = (21, 20);
        Assert.Equal(expected, sub.Frames.Select(f => f.N));
        AssertCumulative(new long[Partitions], sub.Frames);
        Assert.Equal(high, sub.Frames[^1].Pos);
    }

    [Fact]
    public async Task A_catch_up_from_a_position_reads_exactly_what_follows_it_in_every_partition()
    {
        var topic = NewTopic();
        await Write(topic, Scrambled(60));
        var all = new FrameRecorder();
        using var cts = new CancellationTokenSource(Timeout);
        var high = await Heads(topic);
        await _replay.ReadAsync(topic, topic, new long[Partitions], high, all.WriteHistory, cts.Token);

        var from = all.Frames[24].Pos; // resume strictly after the 25th message
        var rest = new FrameRecorder();
        await _replay.ReadAsync(topic, topic, from, high, rest.WriteHistory, cts.Token);
        Assert.Equal(all.Frames.Skip(25).Select(f => f.N), rest.Frames.Select(f => f.N));
        AssertCumulative(from, rest.Frames);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(39)]
    [InlineData(40)]
    [InlineData(1000)]
    public async Task The_start_of_the_last_n_is_where_exactly_the_latest_n_records_begin(int n)
    {
        var topic = NewTopic();
        await Write(topic, Scrambled(40, seed: 11));
        var heads = await _node.Log.QueryHeadsAsync(topic).WaitAsync(Timeout);
        using var cts = new CancellationTokenSource(Timeout);
        var start = await _replay.StartOfLastAsync(topic, heads.Low, heads.High, n, cts.Token);

        var sub = new FrameRecorder();
        await _replay.ReadAsync(topic, topic, start, heads.High, sub.WriteHistory, cts.Token);
        Assert.Equal(Enumerable.Range(Math.Max(0, 40 - n), Math.Min(40, n)).Select(i => (long)i), sub.Frames.Select(f => f.N));
    }

    [Fact]
    public async Task A_feed_reads_every_partition_and_its_frames_carry_its_position()
    {
        var topic = NewTopic();
        var sub = new FrameRecorder();
        Assert.True((await _hub.JoinAsync(topic, topic, new long[Partitions], sub).WaitAsync(Timeout)).Joined);
        var records = Scrambled(40);
        await Write(topic, records);
        await sub.WaitForCount(40);

        var frames = sub.Frames;
        AssertCumulative(new long[Partitions], frames);
        Assert.Equal(await Heads(topic), frames[^1].Pos);
        for (var p = 0; p < Partitions; p++)
        {
            var partition = p;
            Assert.Equal(records.Where(r => r.Partition == partition).Select(r => r.N), frames.Where(f => f.P == partition).Select(f => f.N));
        }
    }

    [Fact]
    public async Task A_subscriber_joining_behind_a_running_multi_partition_feed_gets_everything_exactly_once()
    {
        const int total = 1200;
        var topic = NewTopic();
        var live = new FrameRecorder();
        Assert.True((await _hub.JoinAsync(topic, topic, new long[Partitions], live).WaitAsync(Timeout)).Joined);
        var records = Scrambled(total, seed: 3);
        var writing = Task.Run(async () =>
        {
            for (var i = 0; i < total; i += 40) await Write(topic, records[i..(i + 40)]);
        });
        await live.WaitForCount(150); // the feed is now ahead of the late subscriber's start

        var late = new FrameRecorder();
        var start = new long[Partitions];
        var catchUps = 0;
        while (true)
        {
            var join = await _hub.JoinAsync(topic, topic, start, late).WaitAsync(Timeout);
            if (join.Joined) break;
            Assert.All(Enumerable.Range(0, Partitions), p => Assert.True(join.CatchUpTo[p] >= start[p]));
            using var cts = new CancellationTokenSource(Timeout);
            await _replay.ReadAsync(topic, topic, start, join.CatchUpTo, late.WriteHistory, cts.Token);
            start = join.CatchUpTo;
            Assert.True(++catchUps < 1000, "the catch-up never converged");
        }
        Assert.True(catchUps > 0);

        await writing.WaitAsync(Timeout);
        await live.WaitForCount(total);
        await late.WaitForCount(total);
        foreach (var sub in new[] { live, late })
        {
            var frames = sub.Frames;
            Assert.Equal(total, frames.Count);
            AssertCumulative(new long[Partitions], frames);
            for (var p = 0; p < Partitions; p++)
            {
                var partition = p;
                Assert.Equal(records.Where(r => r.Partition == partition).Select(r => r.N), frames.Where(f => f.P == partition).Select(f => f.N));
            }
        }
    }

    [Fact]
    public async Task A_subscriber_ahead_of_the_feed_skips_what_it_has_seen_and_gets_positions_of_its_own()
    {
        var topic = NewTopic();
        (int, long, long)[] old = [(0, 0, 0), (1, 1, 10), (2, 2, 20), (3, 3, 30), (2, 4, 40), (3, 5, 50)];
        await Write(topic, old);
        var head = await Heads(topic);

        // The feed reads partitions 0 and 1 only (as a node does that has not yet seen the topic's
        // other partitions), so it lags the log in partitions 2 and 3. (This hub does not refresh
        // partition counts: only the second join widens the feed.)
        var hub = _node.Hub();
        var first = new FrameRecorder();
        Assert.True((await hub.JoinAsync(topic, topic, [0, 0], first).WaitAsync(Timeout)).Joined);
        await first.WaitForCount(2);

        // A subscriber at the head joins at once (no catch-up): it is ahead of the feed in 2 and 3.
        var second = new FrameRecorder();
        var join = await hub.JoinAsync(topic, topic, head, second).WaitAsync(Timeout);
        Assert.True(join.Joined);

        (int, long, long)[] fresh = [(2, 6, 60), (0, 7, 70), (3, 8, 80), (1, 9, 90), (2, 10, 100)];
        await Write(topic, fresh);
        await first.WaitForCount(old.Length + fresh.Length);
        await second.WaitForCount(fresh.Length);

        // The first subscriber gets the added partitions from their beginning: every record once.
        Assert.Equal(Enumerable.Range(0, 11).Select(i => (long)i), first.Frames.Select(f => f.N).Order());
        // The second gets only what follows its start, and positions that resume exactly after each.
        Assert.Equal(fresh.Select(r => r.Item2), second.Frames.Select(f => f.N).Order());
        foreach (var f in second.Frames)
            Assert.All(Enumerable.Range(0, Partitions), p => Assert.True(f.Pos[p] >= head[p], $"pos {string.Join(",", f.Pos)} is behind the start {string.Join(",", head)}"));
        Assert.Equal(await Heads(topic), Furthest(head, second.Frames));
    }

    [Fact]
    public async Task Partitions_a_feed_does_not_read_yet_are_picked_up_by_the_partition_refresh()
    {
        var topic = NewTopic();
        var records = Scrambled(30, seed: 5);
        await Write(topic, records);
        var sub = new FrameRecorder();
        // Joined as a node that knew only two partitions: the refresh finds four.
        Assert.True((await _hub.JoinAsync(topic, topic, [0, 0], sub).WaitAsync(Timeout)).Joined);
        await sub.WaitForCount(30);
        Assert.Equal(records.Select(r => r.N), sub.Frames.Select(f => f.N).Order());
        Assert.Equal(await Heads(topic), Furthest(new long[Partitions], sub.Frames));
    }

    [Fact]
    public async Task A_catch_up_whose_range_retention_deleted_meanwhile_ends_instead_of_waiting_forever()
    {
        var topic = NewTopic();
        await Write(topic, [.. Enumerable.Range(0, 10).Select(n => (0, (long)n, 10L * n)), (1, 10, 200), (1, 11, 210)]);
        // Partition 0 keeps nothing: a read of [2, 6) there finds nothing, partition 1 reads both.
        _node.Cluster.DeleteRecords(topic, 0, 10);
        var sub = new FrameRecorder();
        using var cts = new CancellationTokenSource(Timeout);
        await _replay.ReadAsync(topic, topic, [2, 0, 0, 0], [6, 2, 0, 0], sub.WriteHistory, cts.Token);
        Assert.Equal([10L, 11], sub.Frames.Select(f => f.N));
    }

    public void Dispose()
    {
        _producer.Dispose();
        _node.Dispose();
    }
}
