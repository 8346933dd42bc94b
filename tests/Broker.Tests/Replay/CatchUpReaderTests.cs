using System.Text;
using Broker.Core.Connections;
using Broker.Core.Fanout;
using Broker.Core.Log;
using Broker.Core.Metrics;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Tests.Replay;

/// <summary>Fair use of the node's replay slots, and what happens when a replay fails.</summary>
public sealed class CatchUpReaderTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly EmbeddedLogNode _node = new(s => s with { MaxConcurrentReplays = 1 });
    private readonly CatchUpReader _reader;

    public CatchUpReaderTests() => _reader = _node.Reader();

    private async Task Produce(string topic, int count)
    {
        await _node.Log.EnsureTopicAsync(topic);
        var pending = new List<Task>();
        for (var n = 0; n < count; n++) pending.Add(_node.Log.ProduceAsync(topic, null, Encoding.UTF8.GetBytes($$"""{"n":{{n}}}""")));
        await Task.WhenAll(pending).WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_read_whose_client_does_not_take_its_records_gives_the_only_slot_to_another_read_and_then_finishes()
    {
        await Produce("stuck", 10);
        await Produce("other", 3);
        var room = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stuckSeen = new List<long>();
        using var cts = new CancellationTokenSource(Timeout);
        // The stuck client takes its first record and then makes no room until told.
        var stuck = _reader.ReadRecordsAsync("stuck", [0], [10], (record, _) =>
        {
            stuckSeen.Add(record.Offset.Value);
            return stuckSeen.Count == 2 ? new ValueTask(room.Task) : ValueTask.CompletedTask;
        }, cts.Token);

        var other = new FrameRecorder();
        await _reader.ReadAsync("other", "other", [0], [3], other.WriteHistory, cts.Token).WaitAsync(Timeout);
        Assert.Equal([0L, 1, 2], other.Offsets); // read while the stuck one waits, on the node's only slot
        Assert.False(stuck.IsCompleted);

        room.SetResult();
        await stuck.WaitAsync(Timeout);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), stuckSeen); // resumed where it stopped: nothing twice, nothing missed
    }

    [Fact]
    public async Task One_connections_reads_wait_for_each_other_beyond_its_share()
    {
        await Produce("share-a", 2);
        await Produce("share-b", 2);
        var share = new ReplayShare(1);
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = new CancellationTokenSource(Timeout);
        var first = _reader.ReadRecordsAsync("share-a", [0], [2], (_, _) => new ValueTask(hold.Task), cts.Token, share);
        var second = new FrameRecorder();
        var secondRead = _reader.ReadAsync("share-b", "share-b", [0], [2], second.WriteHistory, cts.Token, share: share);
        await Eventually.TrueAsync(() => _reader.ActiveReads == 0, Timeout, "the first read gave its slot back"); // the slot is free, the share is not
        Assert.False(secondRead.IsCompleted);
        hold.SetResult();
        await Task.WhenAll(first, secondRead).WaitAsync(Timeout);
        Assert.Equal([0L, 1], second.Offsets);
    }

    [Fact]
    public async Task A_subscription_whose_history_cannot_be_read_closes_its_connection_to_resume()
    {
        await Produce("broken", 3);
        var outbound = new OutboundQueue(64, long.MaxValue);
        var metrics = new BrokerMetrics();
        var feeds = _node.Hub();
        var node = new NodeServices(TestDefaults.Connection, _node.Log, feeds, _reader, new Publisher(_node.Log, Akka.Actor.ActorRefs.Nobody, Timeout, metrics),
            new ConnectionRegistry(), metrics);
        var sub = new Subscription("broken", _node.Map("broken"), outbound, node, null, false, new ReplayShare(1), NullLogger.Instance);
        _reader.Dispose(); // the reader is gone: its reads fail
        sub.Start([0], [3]);
        Assert.Equal(new CloseRequest(1013, Subscription.ReplayFailed), await outbound.Closed.WaitAsync(Timeout));
        await sub.StopAsync().WaitAsync(Timeout);
    }

    public void Dispose() => _node.Dispose();
}
