using System.Threading.Channels;

namespace Broker.Core.Connections;

/// <summary>Why and how a connection is being closed.</summary>
public sealed record CloseRequest(int Code, string Reason);

/// <summary>
/// The one bounded outbound buffer of a connection. Replies are enqueued with backpressure
/// (the inbound side waits, and so does TCP); live messages from a shared feed are offered
/// without waiting, and a full buffer closes the connection with 1013 <c>slow_consumer</c>
/// instead of stalling the feed for everybody else.
/// </summary>
public sealed class Outbound
{
    private readonly Channel<byte[]> _channel;
    private readonly TaskCompletionSource<CloseRequest> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _maxBytes;
    private long _bytes;

    /// <param name="capacity">Most frames queued.</param>
    /// <param name="maxBytes">Most bytes queued before a live message closes the connection as a slow consumer.</param>
    public Outbound(int capacity, long maxBytes = long.MaxValue)
    {
        _maxBytes = maxBytes;
        _channel = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public ChannelReader<byte[]> Reader => _channel.Reader;

    /// <summary>Bytes queued and not yet sent.</summary>
    public long QueuedBytes => Volatile.Read(ref _bytes);

    /// <summary>Called by the sender for each frame it took from <see cref="Reader"/>.</summary>
    public void Sent(byte[] frame) => Interlocked.Add(ref _bytes, -frame.Length);

    /// <summary>Completes with the first close request.</summary>
    public Task<CloseRequest> Closed => _closed.Task;

    public CloseRequest? CloseRequested => _closed.Task.IsCompleted ? _closed.Task.Result : null;

    /// <summary>Enqueues a frame, waiting for room. Returns false once the connection is closing.</summary>
    public async ValueTask<bool> EnqueueAsync(byte[] frame, CancellationToken ct = default)
    {
        try
        {
            await _channel.Writer.WriteAsync(frame, ct).ConfigureAwait(false);
            Interlocked.Add(ref _bytes, frame.Length);
            return true;
        }
        catch (ChannelClosedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Enqueues a history frame (replay), waiting for room at most <paramref name="stall"/>: a client
    /// that stops reading during a replay is closed as a slow consumer instead of holding a replay
    /// reader forever. Returns false once the connection is closing.
    /// </summary>
    public async ValueTask<bool> EnqueueHistoryAsync(byte[] frame, TimeSpan stall, CancellationToken ct)
    {
        if (_channel.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _bytes, frame.Length);
            return true;
        }
        if (CloseRequested is not null) return false;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(stall);
        try
        {
            return await EnqueueAsync(frame, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            RequestClose(1013, "slow_consumer");
            return false;
        }
    }

    /// <summary>Offers a live frame; a full buffer closes the connection as a slow consumer.</summary>
    public bool TryEnqueueLive(byte[] frame)
    {
        if (Volatile.Read(ref _bytes) + frame.Length <= _maxBytes && _channel.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _bytes, frame.Length);
            return true;
        }
        RequestClose(1013, "slow_consumer");
        return false;
    }

    /// <summary>Asks the connection to close; the first request wins. Nothing more is accepted.</summary>
    public void RequestClose(int code, string reason)
    {
        if (_closed.TrySetResult(new CloseRequest(code, reason))) _channel.Writer.TryComplete();
    }
}
