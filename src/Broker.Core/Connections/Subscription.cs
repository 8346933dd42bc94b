using Broker.Core.Fanout;
using Broker.Core.Log;
using Broker.Core.Replay;
using Broker.Core.Settings;
using Broker.Protocol;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Connections;

/// <summary>
/// One connection's subscription to one topic: it catches up from its start position with the
/// catch-up reader (history), then joins the node's feed (live); see <see cref="TopicFeed"/> and
/// <see cref="SharedFeed"/> for the handover rule. Live frames go to the connection's outbound
/// queue without waiting; history frames wait for room (at most <c>replay-stall-timeout</c>).
/// A subscription of a multiplexed topic starts at one offset of the topic's partition of the shared
/// Kafka topic; recent history the feed keeps is served from memory when it covers the start.
/// </summary>
internal sealed class Subscription : IFeedSubscriber
{
    private readonly TopicMapping _mapping;
    private readonly OutboundQueue _outbound;
    private readonly NodeServices _node;
    private readonly byte[]? _keyFilter;
    private readonly bool _withHeaders;
    private readonly ReplayShare _share;
    private readonly ILogger _logger;
    private CancellationTokenSource? _cts;
    private Task _run = Task.CompletedTask;

    /// <param name="share">The connection's share of the node's replay slots.</param>
    public Subscription(string topic, TopicMapping mapping, OutboundQueue outbound, NodeServices node, byte[]? keyFilter, bool withHeaders,
        ReplayShare share, ILogger logger)
    {
        _share = share;
        _logger = logger;
        Topic = topic;
        _mapping = mapping;
        _outbound = outbound;
        _node = node;
        _keyFilter = keyFilter;
        _withHeaders = withHeaders;
    }

    public string Topic { get; }

    public string KafkaTopic => _mapping.KafkaTopic;

    public TopicMapping Mapping => _mapping;

    public bool TryDeliver(byte[] frame) => _outbound.TryEnqueueLive(frame);

    /// <summary>The node's reader lost records this subscriber has not received: close like a slow consumer, so the client resumes with <c>since</c> and learns it.</summary>
    public void Lost() => _outbound.RequestClose(CloseCodes.TryAgainLater, "slow_consumer");

    public byte[]? KeyFilter => _keyFilter;

    public bool WithHeaders => _withHeaders;

    /// <summary>Frames from the feed's recent history can be used as they are (no key filter or headers to apply).</summary>
    private bool PlainFrames => _keyFilter is null && !_withHeaders;

    // ---- topics of their own ---------------------------------------------------------------

    /// <summary>
    /// From "latest" on a topic this node reads already: joins in step with the feed; <paramref name="subscribed"/>
    /// queues the reply (with the feed's position) before any live frame. False: the node does not read it now.
    /// </summary>
    public bool TryStartAtHead(Func<Position, bool> subscribed) => _mapping.Multiplexed
        ? _node.Feeds.TryJoinSharedAtHead(KafkaTopic, Topic, _mapping.SharedPartition, this, at => subscribed(Position.Single(at)))
        : _node.Feeds.TryJoinAtHead(KafkaTopic, this, head => subscribed(new Position(head)));

    /// <summary>Starts at <paramref name="start"/> (next offsets per partition); <paramref name="head"/> is the log end at subscribe time.</summary>
    public void Start(long[] start, long[] head)
    {
        _cts = new CancellationTokenSource();
        _run = RunAsync(start, head, _cts.Token);
    }

    private static bool Before(long[] start, long[] head)
    {
        for (var p = 0; p < head.Length; p++)
            if ((p < start.Length ? start[p] : 0) < head[p]) return true;
        return false;
    }

    private async Task RunAsync(long[] start, long[] head, CancellationToken ct)
    {
        var replay = _node.Replay;
        try
        {
            // History already in the log is read by the catch-up reader, which waits for the client.
            // Joining below the head would make a new feed deliver that history live, as one burst
            // that closes the connection as a slow consumer once it exceeds the outbound budget.
            if (Before(start, head))
            {
                await replay.ReadAsync(KafkaTopic, Topic, start, head, f => WriteHistory(f, ct), ct, _keyFilter, _withHeaders, _share).ConfigureAwait(false);
                start = head;
            }
            while (!ct.IsCancellationRequested)
            {
                var join = await _node.Feeds.JoinAsync(KafkaTopic, Topic, start, this).ConfigureAwait(false);
                if (join.Joined) return;
                await replay.ReadAsync(KafkaTopic, Topic, start, join.CatchUpTo, f => WriteHistory(f, ct), ct, _keyFilter, _withHeaders, _share).ConfigureAwait(false);
                start = join.CatchUpTo;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Failed(e); // also when the node is shutting down: its connections are closing already (the first close wins)
        }
    }

    // ---- multiplexed topics ----------------------------------------------------------------

    /// <summary>
    /// <c>last: N</c> from the shared feed's recent history, when the feed has read the partition up
    /// to <paramref name="head"/> (the log's end a moment ago, so that "last" means what the client
    /// published before subscribing) and the history holds the topic's last N — or all of them since
    /// <paramref name="retainedFrom"/>, the partition's first retained offset: <paramref name="subscribed"/>
    /// queues the reply with the feed's offset, the frames follow, and the subscription is live.
    /// False: the history cannot answer.
    /// </summary>
    public bool TryStartLast(int n, long retainedFrom, long head, Func<Position, bool> subscribed) =>
        PlainFrames && _node.Feeds.TryJoinSharedLast(KafkaTopic, Topic, _mapping.SharedPartition, n, retainedFrom, head, this, (at, frames) =>
        {
            if (!subscribed(Position.Single(at))) return false;
            return EnqueueAll(frames);
        });

    /// <summary>Starts a multiplexed topic's subscription at <paramref name="start"/> (the next offset of its partition).</summary>
    public void StartShared(long start)
    {
        _cts = new CancellationTokenSource();
        _run = RunSharedAsync([], start, _cts.Token);
    }

    /// <summary>
    /// Starts a multiplexed topic's subscription with the records in <paramref name="ranges"/> (each
    /// [From, To) of its partition, ascending, all below <paramref name="then"/>; the topic's other
    /// records there are known not to be wanted: <c>last: N</c> from the offset index), then goes on
    /// at <paramref name="then"/> as <see cref="StartShared"/> does.
    /// </summary>
    public void StartShared(IReadOnlyList<(long From, long To)> ranges, long then)
    {
        _cts = new CancellationTokenSource();
        _run = RunSharedAsync(ranges, then, _cts.Token);
    }

    private async Task RunSharedAsync(IReadOnlyList<(long From, long To)> ranges, long start, CancellationToken ct)
    {
        var partition = _mapping.SharedPartition;
        var topicKey = System.Text.Encoding.UTF8.GetBytes(Topic);
        try
        {
            foreach (var (from, to) in ranges)
                await _node.Replay.ReadSharedAsync(KafkaTopic, partition, topicKey, Topic, from, to, f => WriteHistory(f, ct), ct, _keyFilter, _withHeaders, _share).ConfigureAwait(false);
            while (!ct.IsCancellationRequested)
            {
                var join = _node.Feeds.JoinShared(KafkaTopic, Topic, partition, start, this, EnqueueAll);
                if (join is null)
                {
                    // The node stopped reading the shared topic meanwhile (nobody subscribed for a while): read it again.
                    using var timeout = new CancellationTokenSource(_node.Settings.RequestTimeout);
                    await SharedFeeds.EnsureReadingAsync(_node.Feeds, _node.Log, _mapping, timeout.Token).ConfigureAwait(false);
                    continue;
                }
                if (join.Value.Joined) return;
                var to = join.Value.CatchUpTo[0];
                await _node.Replay.ReadSharedAsync(KafkaTopic, partition, topicKey, Topic, start, to, f => WriteHistory(f, ct), ct, _keyFilter, _withHeaders, _share).ConfigureAwait(false);
                start = to;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Failed(e); // also when the node is shutting down: its connections are closing already (the first close wins)
        }
    }

    /// <summary>
    /// Reading history (or rejoining the feed) failed: the subscription can no longer deliver in
    /// order, so the connection is closed with 1013 <c>replay_failed</c> — the client reconnects and
    /// resumes with <c>since</c>, losing nothing the log still holds — and the cause is logged.
    /// </summary>
    private void Failed(Exception e)
    {
        _logger.LogWarning("Subscription to {Topic}: reading its history failed ({Reason}); closing the connection with 1013 replay_failed so the client resumes",
            Topic, e.GetBaseException().Message);
        _outbound.RequestClose(CloseCodes.TryAgainLater, ReplayFailed);
    }

    /// <summary>Close reason when a subscription's history could not be read.</summary>
    public const string ReplayFailed = "replay_failed";

    /// <summary>Queues history frames the feed holds in memory (called under the feed's lock: never waits; at most the history's depth).</summary>
    private bool EnqueueAll(List<byte[]> frames)
    {
        foreach (var f in frames)
        {
            if (!_outbound.EnqueueReply(f)) return false;
        }
        return true;
    }

    private async ValueTask WriteHistory(byte[] frame, CancellationToken ct)
    {
        if (!await _outbound.EnqueueHistoryAsync(frame, _node.Settings.ReplayStallTimeout, ct).ConfigureAwait(false)) _cts?.Cancel();
    }

    /// <summary>Stops the subscription; when this completes, nothing more of the topic is written to the connection.</summary>
    public async Task StopAsync()
    {
        _cts?.Cancel();
        try { await _run.ConfigureAwait(false); } catch (Exception) { /* logged where it happened */ }
        if (_mapping.Multiplexed) _node.Feeds.LeaveShared(KafkaTopic, Topic, this);
        else await _node.Feeds.LeaveAsync(KafkaTopic, this).ConfigureAwait(false);
        _cts?.Dispose();
    }
}
