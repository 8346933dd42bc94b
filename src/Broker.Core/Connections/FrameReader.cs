using System.Buffers;
using System.Net.WebSockets;

namespace Broker.Core.Connections;

/// <summary>What <see cref="FrameReader.ReadAsync"/> found.</summary>
public enum FrameKind
{
    /// <summary>A whole text message (reassembled from its fragments).</summary>
    Text,
    /// <summary>A whole binary message (not part of the protocol; its bytes are not kept).</summary>
    Binary,
    /// <summary>The peer sent its close frame, or the connection is gone.</summary>
    Closed,
    /// <summary>The message was longer than the limit (the rest of it is not read).</summary>
    TooBig,
}

/// <summary>One message read from the socket; <see cref="Buffer"/> is pooled: hand it back with <see cref="FrameReader.Return"/>.</summary>
public readonly record struct InboundFrame(FrameKind Kind, byte[]? Buffer, int Count)
{
    public ReadOnlySpan<byte> Span => Buffer is null ? default : Buffer.AsSpan(0, Count);
}

/// <summary>
/// Reads whole messages from a connection's WebSocket, one at a time and only when asked (so a
/// client that floods is slowed by TCP, not buffered). Between messages it waits with a zero-byte
/// read (<see cref="WaitAsync"/>) and holds no buffer: an idle connection costs no receive buffer; a message is read into a
/// pooled buffer that grows up to the frame limit.
/// </summary>
public sealed class FrameReader(WebSocket socket, int maxFrameBytes)
{
    private const int InitialBuffer = 4096;

    /// <summary>
    /// Waits for the next message without a buffer (a zero-byte read) and hands its start to
    /// <see cref="ReadAsync"/>. Not an async method, so that an idle connection's wait holds no state
    /// machine of its own: the caller awaits it, and a gone peer is <see cref="PeerGone"/>.
    /// </summary>
    public ValueTask<ValueWebSocketReceiveResult> WaitAsync() => socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);

    /// <summary>The result a caller of <see cref="WaitAsync"/> hands to <see cref="ReadAsync"/> when the wait threw <see cref="IsPeerGone"/>: read as closed.</summary>
    public static readonly ValueWebSocketReceiveResult PeerGone = new(0, WebSocketMessageType.Close, true);

    /// <summary>The exceptions of a read that mean the peer is gone or the socket was aborted.</summary>
    public static bool IsPeerGone(Exception e) => e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException;

    /// <summary>Reads the whole message that <paramref name="probe"/> (what <see cref="WaitAsync"/> returned) announced.</summary>
    public async ValueTask<InboundFrame> ReadAsync(ValueWebSocketReceiveResult probe)
    {
        if (probe.MessageType == WebSocketMessageType.Close) return new InboundFrame(FrameKind.Closed, null, 0);
        byte[]? buffer = null;
        try
        {
            var type = probe.MessageType;
            var count = 0;
            var end = probe.EndOfMessage;
            buffer = ArrayPool<byte>.Shared.Rent(Math.Min(InitialBuffer, maxFrameBytes + 1));
            while (!end)
            {
                if (count == buffer.Length)
                {
                    // Grow (up to max + 1 bytes: enough to notice a message that is too big).
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, maxFrameBytes + 1));
                    buffer.AsSpan(0, count).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var r = await socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None).ConfigureAwait(false);
                if (r.MessageType == WebSocketMessageType.Close) return Closed(ref buffer);
                count += r.Count;
                end = r.EndOfMessage;
                if (count > maxFrameBytes)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                    return new InboundFrame(FrameKind.TooBig, null, count);
                }
            }
            if (type == WebSocketMessageType.Binary)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = null;
                return new InboundFrame(FrameKind.Binary, null, count);
            }
            var frame = new InboundFrame(FrameKind.Text, buffer, count);
            buffer = null;
            return frame;
        }
        catch (Exception e) when (IsPeerGone(e))
        {
            return Closed(ref buffer); // peer gone or socket aborted
        }
    }

    private static InboundFrame Closed(ref byte[]? buffer)
    {
        if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        buffer = null;
        return new InboundFrame(FrameKind.Closed, null, 0);
    }

    /// <summary>Gives a message's buffer back to the pool once it is decoded.</summary>
    public static void Return(InboundFrame frame)
    {
        if (frame.Buffer is not null) ArrayPool<byte>.Shared.Return(frame.Buffer);
    }

    /// <summary>After a message that was too big, discards what the peer still sends until its close frame (or the close deadline aborts the socket).</summary>
    public async Task DrainUntilCloseAsync()
    {
        var scratch = ArrayPool<byte>.Shared.Rent(InitialBuffer);
        try
        {
            while (true)
            {
                var r = await socket.ReceiveAsync(scratch.AsMemory(), CancellationToken.None).ConfigureAwait(false);
                if (r.MessageType == WebSocketMessageType.Close) return;
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}
