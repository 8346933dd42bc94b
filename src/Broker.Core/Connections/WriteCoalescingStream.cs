using System.Buffers;

namespace Broker.Core.Connections;

/// <summary>
/// Sits between a server <see cref="System.Net.WebSockets.WebSocket"/> and the upgraded HTTP
/// stream so that many frames reach the socket with one write and one flush. Kestrel flushes on
/// every write of an upgraded stream, so a WebSocket writing straight to it costs a flush and a
/// <c>sendmsg</c> per frame; here, while <see cref="BeginBatch"/> is in effect, the WebSocket's
/// writes are only copied into a pooled buffer, and <see cref="EndBatchAsync"/> writes them all at
/// once. Writes outside a batch (pings, pongs and close frames the WebSocket sends by itself) go
/// straight through. Reads pass through untouched. An idle stream holds no buffer.
/// </summary>
public sealed class WriteCoalescingStream(Stream inner) : Stream
{
    /// <summary>Bytes a batch collects before they are written even though the batch goes on.</summary>
    public const int FlushThreshold = 64 * 1024;

    private readonly Lock _sync = new();
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private byte[]? _buffer;
    private int _count;
    private volatile bool _batching;

    /// <summary>Bytes collected and not yet written.</summary>
    public int Pending
    {
        get { lock (_sync) return _count; }
    }

    /// <summary>From now on the WebSocket's writes are collected (one writer at a time: the connection's frame writer).</summary>
    public void BeginBatch() => _batching = true;

    /// <summary>Writes what was collected now, without ending the batch (a batch larger than <see cref="FlushThreshold"/>).</summary>
    public Task WriteCollectedAsync(CancellationToken ct) => WritePendingAsync(ct);

    /// <summary>Ends the batch: everything collected is written to the socket with one write.</summary>
    public Task EndBatchAsync(CancellationToken ct)
    {
        // Cleared before the buffer is taken: a concurrent write (a ping) that still saw the batch
        // appended before this point and is taken with it; one that sees it cleared writes itself.
        _batching = false;
        return WritePendingAsync(ct);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Append(buffer.Span);
        return _batching ? ValueTask.CompletedTask : new ValueTask(WritePendingAsync(cancellationToken));
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    private void Append(ReadOnlySpan<byte> data)
    {
        lock (_sync)
        {
            var needed = _count + data.Length;
            if (_buffer is null || _buffer.Length < needed)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, 4096));
                if (_buffer is not null)
                {
                    _buffer.AsSpan(0, _count).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(_buffer);
                }
                _buffer = bigger;
            }
            data.CopyTo(_buffer.AsSpan(_count));
            _count = needed;
        }
    }

    /// <summary>Takes the collected bytes and writes them (one write at a time to the inner stream).</summary>
    private async Task WritePendingAsync(CancellationToken ct)
    {
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        byte[]? taken;
        int count;
        try
        {
            lock (_sync)
            {
                taken = _buffer;
                count = _count;
                _buffer = null;
                _count = 0;
            }
            if (taken is not null && count > 0) await inner.WriteAsync(taken.AsMemory(0, count), ct).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
        if (taken is not null) ArrayPool<byte>.Shared.Return(taken);
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    /// <summary>
    /// The WebSocket flushes after every frame it sends: within a batch that is deferred to
    /// <see cref="EndBatchAsync"/> (one write for the whole batch); outside a batch it writes at once.
    /// </summary>
    public override Task FlushAsync(CancellationToken cancellationToken) =>
        _batching ? Task.CompletedTask : WritePendingAsync(cancellationToken);

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override bool CanRead => inner.CanRead;
    public override bool CanWrite => inner.CanWrite;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            ReleaseBuffer();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        ReleaseBuffer();
        GC.SuppressFinalize(this);
    }

    private void ReleaseBuffer()
    {
        lock (_sync)
        {
            if (_buffer is not null) ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _count = 0;
        }
    }
}
