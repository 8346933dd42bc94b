using System.Text;
using Broker.Core.Fanout;
using Broker.Core.Log;
using Broker.Core.Replay;
using Broker.Core.Settings;
using Broker.Tests.Infrastructure;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Tests.Fanout;

/// <summary>How a node keeps a shared Kafka topic's offset index filled, against the embedded log.</summary>
public sealed class OffsetIndexingTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const string Shared = "shared";
    private const int Partitions = 3;

    private readonly EmbeddedLogNode _node = new(s => s with
    {
        FeedLinger = TimeSpan.FromMilliseconds(1), // a feed that could linger out would, at once
        Namespaces = [new NamespaceRule("u.>", Shared, Partitions, 1, true, false, null, Multiplex: true)],
    });
    private readonly FeedHub _hub;
    private readonly CatchUpReader _replay;

    public OffsetIndexingTests()
    {
        _hub = _node.Hub(index: TestDefaults.OffsetIndex);
        _replay = _node.Reader();
    }

    /// <summary>Writes records of <paramref name="topic"/> the way the broker does; returns their offsets.</summary>
    private async Task<List<long>> Produce(string topic, int count)
    {
        var mapping = _node.Map(topic);
        var offsets = new List<long>();
        for (var n = 0; n < count; n++)
        {
            var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            _node.Log.ProduceShared(Shared, mapping.SharedPartition, topic, null, Encoding.UTF8.GetBytes($$"""{"n":{{n}}}"""), null, null,
                r => { if (r.Error.IsError) done.SetException(new KafkaException(r.Error)); else done.SetResult(r.Offset.Value); });
            offsets.Add(await done.Task.WaitAsync(Timeout));
        }
        return offsets;
    }

    private async Task<long> High(string topic) => (await _node.Log.QueryWatermarksAsync(Shared, _node.Map(topic).SharedPartition)).High.Value;

    private async Task<IndexAnswer> Last(string topic, int n) =>
        await _hub.LastOffsetsAsync(Shared, topic, _node.Map(topic).SharedPartition, n, 0, await High(topic), CancellationToken.None);

    [Fact]
    public async Task Records_written_before_the_node_read_the_shared_topic_are_backfilled_into_the_index()
    {
        await _node.Log.EnsureTopicAsync(_node.Map("u.x"));
        var early = await Produce("u.early", 3);
        await Produce("u.other", 20);
        var neighbour = Enumerable.Range(0, 1000).Select(i => $"u.n{i}").First(t => _node.Map(t).SharedPartition == _node.Map("u.early").SharedPartition);
        await Produce(neighbour, 5);

        // The node notices the existing topic, reads it from its end and backfills what lies before.
        using var indexing = new OffsetIndexing(_hub, _node.Log, _replay, NullLogger<OffsetIndexing>.Instance);
        indexing.Start();
        await Eventually.TrueAsync(async () => (await Last("u.early", 10)).Outcome == IndexLookup.Found, Timeout, "u.early is indexed");
        Assert.Equal(early, (await Last("u.early", 10)).Offsets); // fewer than 10: all of them
        Assert.Empty((await Last("u.never", 10)).Offsets);       // none, known to be none

        // Written after the feed started: in the index in the same step as it is dispatched.
        var late = await Produce("u.early", 2);
        Assert.Equal(early.Skip(1).Concat(late), (await Last("u.early", 4)).Offsets);
    }

    [Fact]
    public async Task A_shared_topic_ensured_through_the_node_is_read_for_good_without_subscribers()
    {
        using var indexing = new OffsetIndexing(_hub, _node.Log, _replay, NullLogger<OffsetIndexing>.Instance);
        await _node.Log.EnsureTopicAsync(_node.Map("u.x")); // as a publish does
        await Eventually.TrueAsync(() => _hub.IsReading(Shared), Timeout, "the shared topic is read");
        var offsets = await Produce("u.a", 2);
        Assert.Equal(offsets, (await Last("u.a", 5)).Offsets);
        // Past feed-linger (and a few housekeeping rounds) with no subscriber at all: still read.
        await Task.Delay(_node.Settings.FeedLingerCheck * 3); // the absence of a removal, not a synchronisation
        Assert.True(_hub.IsReading(Shared));
    }

    [Fact]
    public async Task Without_the_index_a_shared_feed_answers_unknown()
    {
        var hub = _node.Hub();
        await _node.Log.EnsureTopicAsync(_node.Map("u.x"));
        await SharedFeeds.EnsureReadingAsync(hub, _node.Log, _node.Map("u.x"), CancellationToken.None);
        await Produce("u.a", 1);
        var answer = await hub.LastOffsetsAsync(Shared, "u.a", _node.Map("u.a").SharedPartition, 1, 0, await High("u.a"), CancellationToken.None);
        Assert.Equal(IndexLookup.Unknown, answer.Outcome);
    }

    public void Dispose() => _node.Dispose();
}
