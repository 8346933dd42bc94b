using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Net.WebSockets;

namespace Broker.Bench;

/// <summary>
/// NATS's text protocol over WebSocket binary frames (nats-server's <c>websocket</c> listener):
/// INFO, CONNECT, SUB, PUB, MSG, PING/PONG, +OK/-ERR. The protocol is a byte stream, so commands
/// may span frames and a frame may hold many commands. NATS core has no reply to SUB or PUB: a
/// subscribe is confirmed by the PONG of a PING sent right after it (the server handles a
/// connection's commands in order), and publish throughput is "flushed" the same way.
/// </summary>
public sealed class NatsConn : IBenchClient
{
    private static readonly byte[] Connect = "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false,\"lang\":\"bench\",\"version\":\"1\"}\r\nPING\r\n"u8.ToArray();

    private readonly ClientWebSocket _ws;
    private readonly SemaphoreSlim _sendLock = new(1, 1); // PONGs to server PINGs come from the receive loop
    private readonly ConcurrentQueue<(long Id, FrameType Reply)> _pings = new(); // PINGs sent, in order: what each PONG answers
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<string, int> _sids = new(StringComparer.Ordinal);
    private byte[] _buffer = new byte[8192];
    private int _start, _end;
    private byte[] _send = new byte[1024];
    private volatile bool _closing;
    private volatile IFrameHandler? _handler;
    private Task<string?> _receiving = Task.FromResult<string?>(null);

    private NatsConn(ClientWebSocket ws) => _ws = ws;

    public static async Task<NatsConn> OpenAsync(Uri uri, CancellationToken ct)
    {
        var ws = Endpoint.NewSocket(compress: false);
        try
        {
            await Endpoint.ConnectAsync(ws, uri, ct);
        }
        catch
        {
            ws.Dispose();
            throw;
        }
        var c = new NatsConn(ws);
        c._receiving = Task.Run(c.ReceiveLoop);
        c._pings.Enqueue((-1, FrameType.Other)); // the CONNECT's
        await c.SendRawAsync(Connect, ct);
        await Task.WhenAny(c._connected.Task, c._receiving).WaitAsync(ct);
        if (!c._connected.Task.IsCompleted) throw new InvalidOperationException($"nats connect failed: {await c._receiving}");
        return c;
    }

    public Task<string?> Ended => _receiving;
    public bool AcksPublishes => false;
    public long Frames { get; private set; }
    public long ArrayFrames => 0;
    public long Bytes { get; private set; }

    public void Start(IFrameHandler handler) => _handler = handler;

    public async ValueTask SubscribeAsync(long id, string topic, int last, CancellationToken ct)
    {
        if (last != 0) throw new NotSupportedException("NATS core keeps no history");
        var sid = _sids.Count + 1;
        _sids.TryAdd(topic, sid);
        await _sendLock.WaitAsync(ct);
        try
        {
            var w = new Writer(_send);
            w.Put("SUB "u8).Put(topic).Put(" "u8).Put(sid).Put("\r\nPING\r\n"u8);
            _pings.Enqueue((id, FrameType.Subscribed));
            await _ws.SendAsync(_send.AsMemory(0, w.Length), WebSocketMessageType.Binary, true, ct);
        }
        finally { _sendLock.Release(); }
    }

    public async ValueTask PublishAsync(long id, string topic, ReadOnlyMemory<byte> data, long key, CancellationToken ct)
    {
        var need = 64 + topic.Length + data.Length;
        await _sendLock.WaitAsync(ct);
        try
        {
            if (_send.Length < need) _send = new byte[need * 2];
            var w = new Writer(_send);
            w.Put("PUB "u8).Put(topic).Put(" "u8).Put(data.Length).Put("\r\n"u8).Put(data.Span).Put("\r\n"u8);
            await _ws.SendAsync(_send.AsMemory(0, w.Length), WebSocketMessageType.Binary, true, ct);
        }
        finally { _sendLock.Release(); }
    }

    public async ValueTask PingAsync(long id, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct);
        try
        {
            _pings.Enqueue((id, FrameType.Pong));
            await _ws.SendAsync("PING\r\n"u8.ToArray(), WebSocketMessageType.Binary, true, ct);
        }
        finally { _sendLock.Release(); }
    }

    private async ValueTask SendRawAsync(byte[] bytes, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct);
        try { await _ws.SendAsync(bytes, WebSocketMessageType.Binary, true, ct); }
        finally { _sendLock.Release(); }
    }

    private async Task<string?> ReceiveLoop()
    {
        try
        {
            while (true)
            {
                if (_end == _buffer.Length)
                {
                    // Keep the unparsed tail; grow when it fills the whole buffer.
                    var tail = _end - _start;
                    if (tail * 2 > _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, tail);
                    _start = 0;
                    _end = tail;
                }
                var r = await _ws.ReceiveAsync(_buffer.AsMemory(_end), CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close)
                    return _closing ? null : $"server closed {(int?)_ws.CloseStatus} {_ws.CloseStatusDescription}";
                if (r.EndOfMessage) Frames++;
                Bytes += r.Count;
                _end += r.Count;
                var pongs = Parse();
                for (var i = 0; i < pongs; i++) await SendRawAsync("PONG\r\n"u8.ToArray(), CancellationToken.None);
                if (_start == _end) _start = _end = 0;
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            return _closing ? null : $"socket failed: {e.Message}";
        }
    }

    /// <summary>Handles every complete command in the buffer; returns how many server PINGs need a PONG.</summary>
    private int Parse()
    {
        var pongs = 0;
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var eol = span.IndexOf("\r\n"u8);
            if (eol < 0) return pongs;
            var line = span[..eol];
            if (line.StartsWith("MSG "u8))
            {
                // MSG <subject> <sid> [reply-to] <#bytes>
                var sp = line.LastIndexOf((byte)' ');
                if (!Utf8Parser.TryParse(line[(sp + 1)..], out int size, out _)) throw new InvalidOperationException("bad MSG line");
                var total = eol + 2 + size + 2;
                if (span.Length < total) return pongs;
                var payload = span.Slice(eol + 2, size);
                if (_handler is { } h && Data.TryParse(payload, out var seq, out var sentAt, out var run))
                    h.OnMessage(new Delivery(seq, sentAt, run, -1));
                _start += total;
                continue;
            }
            if (line.SequenceEqual("PING"u8)) pongs++;
            else if (line.SequenceEqual("PONG"u8))
            {
                if (_pings.TryDequeue(out var p))
                {
                    if (p.Id == -1) _connected.TrySetResult();
                    else _handler?.OnReply(p.Reply, p.Id, null);
                }
            }
            else if (line.StartsWith("-ERR"u8)) _handler?.OnReply(FrameType.Error, -1, System.Text.Encoding.UTF8.GetString(line));
            // INFO and +OK: nothing to do.
            _start += eol + 2;
        }
    }

    public async Task CloseAsync()
    {
        _closing = true;
        try
        {
            if (_ws.State == WebSocketState.Open || _ws.State == WebSocketState.CloseReceived)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bench done", cts.Token);
            }
            await _receiving.WaitAsync(TimeSpan.FromSeconds(3));
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or TimeoutException or ObjectDisposedException)
        {
        }
        finally
        {
            _ws.Dispose();
        }
    }
}
