using System.Buffers;
using System.Net.WebSockets;
using Broker.Protocol;

namespace Broker.Core.Connections;

/// <summary>
/// The only writer of a connection's WebSocket. Woken by its <see cref="OutboundQueue"/> when frames
/// arrive, it runs on the thread pool, takes everything queued at once, sends it in queue order and
/// flushes once (through <see cref="WriteCoalescingStream"/>), then looks again; when the queue is
/// empty it stops until the next frame. Under load a drain carries many frames, so the cost of a
/// flush and a system call is shared by all of them; a connection with nothing to send costs nothing.
/// <para>
/// With frame batching (<c>?batch=1</c>) the frames of one drain are also coalesced into JSON
/// arrays of at most <c>batch-max-bytes</c> each (a drain of one frame sends it as it is).
/// </para>
/// </summary>
public sealed class FrameWriter : IOutboundDrain, IThreadPoolWorkItem
{
    private readonly WebSocket _socket;
    private readonly WriteCoalescingStream? _stream;
    private readonly OutboundQueue _queue;
    private readonly int _batchMaxBytes;
    private List<byte[]> _batch = [];

    /// <param name="stream">The stream under <paramref name="socket"/> that coalesces writes; null: every frame is written on its own.</param>
    /// <param name="batchMaxBytes">Largest JSON array of frames sent as one WebSocket message; 0: one object per message.</param>
    public FrameWriter(WebSocket socket, WriteCoalescingStream? stream, OutboundQueue queue, int batchMaxBytes)
    {
        _socket = socket;
        _stream = stream;
        _queue = queue;
        _batchMaxBytes = batchMaxBytes;
        queue.AttachDrain(this);
    }

    public void Wake() => ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);

    void IThreadPoolWorkItem.Execute() => _ = DrainAsync();

    private async Task DrainAsync()
    {
        while (_queue.TakeAll(ref _batch))
        {
            try
            {
                await WriteAsync(_batch).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
            {
                // The peer is gone (or the socket was aborted): close; the rest is dropped.
                _queue.RequestClose(CloseCodes.InternalError, "send failed");
            }
            finally
            {
                _queue.Written(_batch);
            }
        }
    }

    private async Task WriteAsync(List<byte[]> frames)
    {
        _stream?.BeginBatch();
        try
        {
            if (_batchMaxBytes > 0 && frames.Count > 1) await WriteArraysAsync(frames).ConfigureAwait(false);
            else
            {
                foreach (var frame in frames)
                {
                    if (_queue.CloseRequested is not null) return;
                    await SendAsync(frame).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            if (_stream is not null) await _stream.EndBatchAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> message)
    {
        await _socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
        if (_stream is { Pending: >= WriteCoalescingStream.FlushThreshold }) await _stream.WriteCollectedAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Sends the frames as JSON arrays of at most <see cref="_batchMaxBytes"/> (a frame larger than that alone, as itself).</summary>
    private async Task WriteArraysAsync(List<byte[]> frames)
    {
        // Only as large as this drain needs (a pooled 64 KiB array per drain of two small frames
        // would miss the pool's per-thread cache and churn the GC).
        long needed = 2;
        foreach (var f in frames) needed += f.Length + 1;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(needed, _batchMaxBytes));
        try
        {
            var i = 0;
            while (i < frames.Count)
            {
                if (_queue.CloseRequested is not null) return;
                var first = frames[i];
                // One frame that does not fit with another goes alone, as a plain object.
                if (i + 1 == frames.Count || first.Length + frames[i + 1].Length + 3 > _batchMaxBytes)
                {
                    await SendAsync(first).ConfigureAwait(false);
                    i++;
                    continue;
                }
                var length = 0;
                buffer[length++] = (byte)'[';
                // Room for the separator, the frame and the closing bracket.
                while (i < frames.Count && length + (length > 1 ? 1 : 0) + frames[i].Length + 1 <= _batchMaxBytes)
                {
                    if (length > 1) buffer[length++] = (byte)',';
                    frames[i].CopyTo(buffer.AsSpan(length));
                    length += frames[i].Length;
                    i++;
                }
                buffer[length++] = (byte)']';
                await SendAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
