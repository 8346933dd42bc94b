using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using System.Text;
using System.Text.Json;
using Broker.Core.Log;
using Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Tests.Fanout;

public sealed class FeedHubTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly EmbeddedLogNode _node = new();
    private readonly FeedHub _hub;
    private readonly CatchUpReader _replay;

    public FeedHubTests()
    {
        _hub = _node.Hub();
        _replay = _node.Reader();
    }

    /// <summary>Writes records whose data is {"n":offset} on a fresh topic (n counts from <paramref name="first"/>).</summary>
    private async Task Produce(string topic, int first, int count)
    {
        await _node.Log.EnsureTopicAsync(topic);
        var pending = new List<Task>();
        for (var n = first; n < first + count; n++) pending.Add(_node.Log.ProduceAsync(topic, null, Encoding.UTF8.GetBytes($$"""{"n":{{n}}}""")));
        await Task.WhenAll(pending).WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_subscriber_joining_an_idle_topic_is_joined_and_gets_every_record_from_its_start()
    {
        await Produce("idle", 0, 5);
        var sub = new FrameRecorder();
        var join = await _hub.JoinAsync("idle", "idle", [2], sub).WaitAsync(Timeout);
        Assert.True(join.Joined);
        Assert.Equal([2L], join.CatchUpTo);
        await sub.WaitForCount(3);

        await Produce("idle", 5, 3);
        await sub.WaitForCount(6);
        Assert.Equal([2L, 3, 4, 5, 6, 7], sub.Offsets);
        Assert.All(sub.Frames, f => Assert.Equal("idle", f.Topic));
        Assert.Equal(sub.Offsets, sub.Frames.Select(f => f.N));
        Assert.Equal(1, _hub.ActiveFeeds);
    }

    [Fact]
    public async Task A_subscriber_joining_at_the_head_gets_what_is_published_next()
    {
        await _node.Log.EnsureTopicAsync("head");
        var sub = new FrameRecorder();
        Assert.True((await _hub.JoinAsync("head", "head", [0], sub).WaitAsync(Timeout)).Joined);
        await Produce("head", 0, 10);
        await sub.WaitForCount(10);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), sub.Offsets);
    }

    [Fact]
    public async Task A_subscriber_joining_behind_a_running_feed_catches_up_and_gets_everything_exactly_once()
    {
        const int total = 2000;
        await _node.Log.EnsureTopicAsync("busy");
        var live = new FrameRecorder();
        Assert.True((await _hub.JoinAsync("busy", "busy", [0], live).WaitAsync(Timeout)).Joined);

        var producing = Task.Run(async () =>
        {
            for (var n = 0; n < total; n += 20) await Produce("busy", n, 20);
        });
        await live.WaitForCount(200); // the feed is now well past offset 0

        var late = new FrameRecorder();
        var start = 0L;
        var catchUps = new List<long>();
        while (true)
        {
            var join = await _hub.JoinAsync("busy", "busy", [start], late).WaitAsync(Timeout);
            if (join.Joined)
            {
                Assert.Equal([start], join.CatchUpTo);
                break;
            }
            var to = join.CatchUpTo[0];
            Assert.True(to > start, $"catch up to {to} from {start}");
            catchUps.Add(to);
            using var cts = new CancellationTokenSource(Timeout);
            await _replay.ReadAsync("busy", "busy", [start], join.CatchUpTo, late.WriteHistory, cts.Token);
            Assert.Equal(to, late.Count); // history [start, F) read completely
            start = to;
            Assert.True(catchUps.Count < 1000, "the catch-up never converged");
        }
        Assert.NotEmpty(catchUps);
        Assert.True(catchUps[0] >= 200, $"first catch-up target {catchUps[0]}");

        await producing.WaitAsync(Timeout);
        await live.WaitForCount(total);
        await late.WaitForCount(total);
        var expected = Enumerable.Range(0, total).Select(i => (long)i).ToArray();
        Assert.Equal(expected, live.Offsets);
        Assert.Equal(expected, late.Offsets);
        Assert.Equal(expected, late.Frames.Select(f => f.N));
    }

    [Fact]
    public async Task Leave_stops_deliveries()
    {
        await _node.Log.EnsureTopicAsync("leave");
        var leaving = new FrameRecorder();
        var staying = new FrameRecorder();
        Assert.True((await _hub.JoinAsync("leave", "leave", [0], leaving).WaitAsync(Timeout)).Joined);
        Assert.True((await _hub.JoinAsync("leave", "leave", [0], staying).WaitAsync(Timeout)).Joined);
        await Produce("leave", 0, 3);
        await leaving.WaitForCount(3);
        await staying.WaitForCount(3);

        await _hub.LeaveAsync("leave", leaving).WaitAsync(Timeout);
        await Produce("leave", 3, 3);
        // Every record is offered to all members in one pass on the feed thread: once the staying
        // subscriber has record 5, the one that left would have had it too.
        await staying.WaitForCount(6);
        Assert.Equal([0L, 1, 2], leaving.Offsets);
        Assert.Equal(3, leaving.Calls);
        Assert.Equal([0L, 1, 2, 3, 4, 5], staying.Offsets);

        await _hub.LeaveAsync("leave", leaving).WaitAsync(Timeout); // leaving twice is harmless
        await _hub.LeaveAsync("unknown-topic", leaving).WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_subscriber_that_refuses_a_frame_is_dropped_and_the_others_keep_receiving()
    {
        await _node.Log.EnsureTopicAsync("slow");
        var slow = new FrameRecorder { Accept = call => call <= 2 };
        var fast = new FrameRecorder();
        Assert.True((await _hub.JoinAsync("slow", "slow", [0], slow).WaitAsync(Timeout)).Joined);
        Assert.True((await _hub.JoinAsync("slow", "slow", [0], fast).WaitAsync(Timeout)).Joined);

        await Produce("slow", 0, 5);
        await fast.WaitForCount(5);
        await Produce("slow", 5, 5);
        await fast.WaitForCount(10);

        Assert.Equal([0L, 1], slow.Offsets);
        Assert.Equal(3, slow.Calls); // two taken, the third refused, nothing offered after that
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), fast.Offsets);

        // The dropped subscriber can join again where it left off (through a catch-up).
        slow.Accept = _ => true;
        var join = await _hub.JoinAsync("slow", "slow", [2], slow).WaitAsync(Timeout);
        Assert.False(join.Joined);
        Assert.Equal([10L], join.CatchUpTo);
    }

    [Fact]
    public async Task Subscribers_whose_records_retention_deleted_before_the_feed_read_them_are_told_and_the_others_go_on()
    {
        await Produce("lag", 0, 10);
        _node.Cluster.DeleteRecords("lag", 0, 5); // the log keeps offsets 5..9
        // A subscriber at offset 2 (a feed that lagged behind retention) would miss 2..4.
        var behind = new FrameRecorder();
        Assert.True((await _hub.JoinAsync("lag", "lag", [2], behind).WaitAsync(Timeout)).Joined);
        await behind.LostTask.WaitAsync(Timeout);

        // One that starts within what is retained is not affected and gets everything from its start.
        var within = new FrameRecorder();
        var join = await _hub.JoinAsync("lag", "lag", [6], within).WaitAsync(Timeout);
        if (!join.Joined)
        {
            using var cts = new CancellationTokenSource(Timeout);
            await _replay.ReadAsync("lag", "lag", [6], join.CatchUpTo, within.WriteHistory, cts.Token);
            Assert.True((await _hub.JoinAsync("lag", "lag", join.CatchUpTo, within).WaitAsync(Timeout)).Joined);
        }
        await Produce("lag", 10, 3);
        await within.WaitForCount(7);
        Assert.Equal([6L, 7, 8, 9, 10, 11, 12], within.Offsets);
        Assert.Equal(0, within.LostCalls);
        Assert.Equal(1, behind.LostCalls);
        Assert.Empty(behind.Frames); // nothing after the gap reached it as if nothing were missing
    }

    [Fact]
    public async Task A_connections_subscription_that_lost_records_closes_the_connection_as_a_slow_consumer_to_resume()
    {
        await Produce("lag-conn", 0, 10);
        _node.Cluster.DeleteRecords("lag-conn", 0, 5);
        var outbound = new Broker.Core.Connections.OutboundQueue(16, long.MaxValue);
        var metrics = new Broker.Core.Metrics.BrokerMetrics();
        var node = new NodeServices(TestDefaults.Connection with { ReplayStallTimeout = TimeSpan.FromSeconds(5) }, _node.Log, _hub, _replay,
            new Publisher(_node.Log, Akka.Actor.ActorRefs.Nobody, Timeout, metrics), new ConnectionRegistry(), metrics);
        var sub = new Subscription("lag-conn", _node.Map("lag-conn"), outbound, node, null, false, new ReplayShare(2), NullLogger.Instance);
        sub.Start([2], [2]); // as a subscription whose records retention deleted before the feed read them
        Assert.Equal(new Broker.Core.Connections.CloseRequest(1013, "slow_consumer"), await outbound.Closed.WaitAsync(Timeout));
        await sub.StopAsync().WaitAsync(Timeout);
    }

    [Fact]
    public async Task Catch_up_reads_exactly_the_requested_range()
    {
        await Produce("range", 0, 10);
        var sub = new FrameRecorder();
        using var cts = new CancellationTokenSource(Timeout);
        await _replay.ReadAsync("range", "range", [3], [7], sub.WriteHistory, cts.Token);
        Assert.Equal([3L, 4, 5, 6], sub.Offsets);
        await _replay.ReadAsync("range", "range", [7], [7], sub.WriteHistory, cts.Token); // empty range
        await _replay.ReadAsync("range", "range", [9], [10], sub.WriteHistory, cts.Token); // the last record
        Assert.Equal([3L, 4, 5, 6, 9], sub.Offsets);
    }

    public void Dispose() => _node.Dispose();
}
