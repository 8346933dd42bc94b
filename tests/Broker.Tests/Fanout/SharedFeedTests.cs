using System.Text;
using System.Text.Json.Nodes;
using Broker.Core.Fanout;
using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.Protocol;
using Broker.Tests.Infrastructure;
using Confluent.Kafka;

namespace Broker.Tests.Fanout;

/// <summary>A node's feed of a multiplexed namespace's shared Kafka topic, against the embedded log.</summary>
public sealed class SharedFeedTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const string Shared = "shared";
    private const int Partitions = 3;

    private readonly EmbeddedLogNode _node = new(s => s with
    {
        FeedLinger = TimeSpan.FromMinutes(5),
        Namespaces = [new NamespaceRule("u.>", Shared, Partitions, 1, true, false, null, Multiplex: true)],
    });
    private readonly FeedHub _hub;

    public SharedFeedTests() => _hub = _node.Hub(history: new RecentHistorySettings(5, 1 << 20, TimeSpan.FromMinutes(10)));

    private static List<long> Values(FrameRecorder r) => r.Frames.ConvertAll(f => f.N);

    private async Task StartAsync()
    {
        await _node.Log.EnsureTopicAsync(_node.Map("u.x"));
        await SharedFeeds.EnsureReadingAsync(_hub, _node.Log, _node.Map("u.x"), CancellationToken.None);
    }

    /// <summary>Writes records of <paramref name="topic"/> (data {"n":…}) the way the broker does; returns their offsets.</summary>
    private async Task<List<long>> Produce(string topic, int first, int count)
    {
        var mapping = _node.Map(topic);
        var offsets = new List<long>();
        for (var n = first; n < first + count; n++)
        {
            var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            _node.Log.ProduceShared(Shared, mapping.SharedPartition, topic, null, Encoding.UTF8.GetBytes($$"""{"n":{{n}}}"""), null, null,
                r => { if (r.Error.IsError) done.SetException(new KafkaException(r.Error)); else done.SetResult(r.Offset.Value); });
            offsets.Add(await done.Task.WaitAsync(Timeout));
        }
        return offsets;
    }

    [Fact]
    public async Task Each_topic_gets_only_its_records_with_one_partition_positions()
    {
        await StartAsync();
        var a = new FrameRecorder();
        var b = new FrameRecorder();
        Assert.True(_hub.TryJoinSharedAtHead(Shared, "u.a", _node.Map("u.a").SharedPartition, a, _ => true));
        Assert.True(_hub.TryJoinSharedAtHead(Shared, "u.b", _node.Map("u.b").SharedPartition, b, _ => true));
        var offsetsA = await Produce("u.a", 0, 3);
        await Produce("u.b", 10, 2);
        await a.WaitForCount(3);
        await b.WaitForCount(2);
        Assert.Equal([0L, 1, 2], Values(a));
        Assert.Equal([10L, 11], Values(b));
        Assert.Equal(offsetsA.Select(o => Position.Encode([o + 1])), a.Frames.Select(f => Position.Encode(f.Pos)));
    }

    [Fact]
    public async Task A_record_in_another_partition_than_its_topics_is_skipped_and_counted()
    {
        await StartAsync();
        var sub = new FrameRecorder();
        var mapping = _node.Map("u.home");
        Assert.True(_hub.TryJoinSharedAtHead(Shared, "u.home", mapping.SharedPartition, sub, _ => true));
        // A producer with another partitioner wrote the topic's record elsewhere.
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = _node.Cluster.BootstrapServers }).Build();
        var wrong = (mapping.SharedPartition + 1) % Partitions;
        await producer.ProduceAsync(new TopicPartition(Shared, wrong), new Message<byte[], byte[]> { Key = "u.home"u8.ToArray(), Value = """{"n":99}"""u8.ToArray() });
        await Produce("u.home", 1, 1);
        await sub.WaitForCount(1);
        Assert.Equal([1L], Values(sub));
        Assert.Contains(await _hub.SnapshotAsync(), f => f.Shared && f.KafkaTopic == Shared);
    }

    [Fact]
    public async Task A_join_behind_the_feed_is_served_from_recent_history_when_it_covers_the_gap_else_told_to_catch_up()
    {
        await StartAsync();
        var live = new FrameRecorder();
        var p = _node.Map("u.h").SharedPartition;
        Assert.True(_hub.TryJoinSharedAtHead(Shared, "u.h", p, live, _ => true));
        var offsets = await Produce("u.h", 0, 8); // the history keeps the last 5
        await live.WaitForCount(8);

        var recent = new FrameRecorder();
        var join = _hub.JoinShared(Shared, "u.h", p, offsets[4], recent, frames => { foreach (var f in frames) recent.TryDeliver(f); return true; });
        Assert.True(join!.Value.Joined);
        Assert.Equal([4L, 5, 6, 7], Values(recent));

        var older = new FrameRecorder();
        join = _hub.JoinShared(Shared, "u.h", p, offsets[1], older, _ => throw new InvalidOperationException("not from history"));
        Assert.False(join!.Value.Joined);
        Assert.Equal(offsets[7] + 1, join.Value.CatchUpTo[0]);

        // Both joined ones go on live, once each.
        await Produce("u.h", 8, 1);
        await recent.WaitForCount(5);
        Assert.Equal([4L, 5, 6, 7, 8], Values(recent));
    }

    [Fact]
    public async Task Last_n_is_served_from_history_only_when_it_holds_n()
    {
        await StartAsync();
        var p = _node.Map("u.l").SharedPartition;
        var live = new FrameRecorder();
        Assert.True(_hub.TryJoinSharedAtHead(Shared, "u.l", p, live, _ => true));
        await Produce("u.l", 0, 4);
        await live.WaitForCount(4);

        var three = new FrameRecorder();
        Assert.True(_hub.TryJoinSharedLast(Shared, "u.l", p, 3, -1, 0, three, (_, frames) => { foreach (var f in frames) three.TryDeliver(f); return true; }));
        Assert.Equal([1L, 2, 3], Values(three));
        // Four are held but not ten, and the history does not reach back to the partition's start.
        Assert.False(_hub.TryJoinSharedLast(Shared, "u.l", p, 10, -1, 0, new FrameRecorder(), (_, _) => true));
        // Nor does it answer before the feed has read up to the log's end the subscriber saw.
        Assert.False(_hub.TryJoinSharedLast(Shared, "u.l", p, 3, -1, long.MaxValue, new FrameRecorder(), (_, _) => true));
    }

    [Fact]
    public async Task A_topic_without_subscribers_is_forgotten_once_idle()
    {
        var hub = _node.Hub(history: new RecentHistorySettings(5, 1 << 20, TimeSpan.FromMilliseconds(1)));
        await _node.Log.EnsureTopicAsync(_node.Map("u.x"));
        await SharedFeeds.EnsureReadingAsync(hub, _node.Log, _node.Map("u.x"), CancellationToken.None);
        var keeper = new FrameRecorder();
        Assert.True(hub.TryJoinSharedAtHead(Shared, "u.keep", _node.Map("u.keep").SharedPartition, keeper, _ => true));
        await Produce("u.idle", 0, 2);
        await Produce("u.keep", 0, 1);
        await keeper.WaitForCount(1);
        // The idle topic's history goes with the next sweeps (once a second); the subscribed one stays.
        await Eventually.TrueAsync(async () => (await hub.SnapshotAsync()).Single(f => f.Shared).Topics == 1, Timeout);
    }

    public void Dispose() => _node.Dispose();
}
