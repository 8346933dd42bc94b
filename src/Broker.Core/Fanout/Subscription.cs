using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Log;

namespace Broker.Core.Fanout;

/// <summary>
/// One connection's subscription to one topic: it catches up from its start position (next
/// offsets per partition) with the catch-up reader, then joins the node feed (see <see cref="FeedHub"/> for the handover rule).
/// </summary>
internal sealed class Subscription(string topic, string kafkaTopic, OutboundQueue outbound, FeedHub feeds, CatchUpReader replay, TimeSpan replayStall, byte[]? keyFilter = null, bool withHeaders = false) : IFeedSubscriber
{
    private readonly CancellationTokenSource _cts = new();
    private Task _run = Task.CompletedTask;

    public string Topic { get; } = topic;

    public string KafkaTopic => kafkaTopic;

    public bool TryDeliver(byte[] frame) => outbound.TryEnqueueLive(frame);

    /// <summary>The node's reader lost records this subscriber has not received: close like a slow consumer, so the client resumes with <c>since</c> and learns it.</summary>
    public void Lost() => outbound.RequestClose(Broker.Protocol.CloseCodes.TryAgainLater, "slow_consumer");

    public byte[]? KeyFilter => keyFilter;

    public bool WithHeaders => withHeaders;

    /// <summary>Starts at <paramref name="start"/>; <paramref name="head"/> is the log end at subscribe time (per partition).</summary>
    public void Start(long[] start, long[] head) => _run = RunAsync(start, head);

    private static bool Before(long[] start, long[] head)
    {
        for (var p = 0; p < head.Length; p++)
            if ((p < start.Length ? start[p] : 0) < head[p]) return true;
        return false;
    }

    private async Task RunAsync(long[] start, long[] head)
    {
        var ct = _cts.Token;
        try
        {
            // History already in the log is read by the catch-up reader, which waits for the client.
            // Joining below the head would make a new feed deliver that history live, as one burst
            // that closes the connection as a slow consumer once it exceeds the outbound buffer.
            if (Before(start, head))
            {
                await replay.ReadAsync(kafkaTopic, Topic, start, head, f => WriteHistory(f, ct), ct, keyFilter, withHeaders).ConfigureAwait(false);
                start = head;
            }
            while (!ct.IsCancellationRequested)
            {
                var join = await feeds.JoinAsync(kafkaTopic, Topic, start, this).ConfigureAwait(false);
                if (join.Joined) return;
                await replay.ReadAsync(kafkaTopic, Topic, start, join.CatchUpTo, f => WriteHistory(f, ct), ct, keyFilter, withHeaders).ConfigureAwait(false);
                start = join.CatchUpTo;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async ValueTask WriteHistory(byte[] frame, CancellationToken ct)
    {
        if (!await outbound.EnqueueHistoryAsync(frame, replayStall, ct).ConfigureAwait(false)) _cts.Cancel();
    }

    /// <summary>Stops the subscription; when this completes, nothing more of the topic is written to the connection.</summary>
    public async Task StopAsync()
    {
        _cts.Cancel();
        try { await _run.ConfigureAwait(false); } catch (Exception) { /* logged where it happened */ }
        await feeds.LeaveAsync(kafkaTopic, this).ConfigureAwait(false);
        _cts.Dispose();
    }
}
