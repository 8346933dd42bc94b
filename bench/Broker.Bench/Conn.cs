using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Broker.Bench;

// The client side of the protocols, in one place: IBenchClient is what the scenarios use;
// Conn speaks the broker's JSON protocol (broker and ceiling targets), NatsConn (NatsConn.cs)
// speaks NATS over WebSocket. Switching the broker side to the team's .NET client library means
// replacing Conn only.

public enum Target { Broker, Ceiling, Nats }

public enum FrameType { Other, Message, Ack, Error, Subscribed, Unsubscribed, Pong }

/// <summary>The fields of a delivered message the bench looks at (all from <c>data</c> except <c>Key</c>).</summary>
/// <param name="Seq"><c>data.s</c>: the publisher's sequence number.</param>
/// <param name="SentAt"><c>data.t</c>: the publisher's Stopwatch timestamp at send (same process, monotonic).</param>
/// <param name="Run"><c>data.r</c>: the run (step) the publish belongs to.</param>
/// <param name="Key">N when the message's <c>key</c> is the bench's <c>"kN"</c>; -1 without key; -2 for any other key.</param>
public readonly record struct Delivery(long Seq, long SentAt, long Run, long Key);

/// <summary>Receives what a connection's receive loop parsed, on that loop's thread, one call at a time.</summary>
public interface IFrameHandler
{
    void OnMessage(in Delivery d);

    /// <summary>A reply: <paramref name="id"/> is the request id when numeric (the bench only sends numeric ids), else -1.</summary>
    void OnReply(FrameType type, long id, string? code);
}

/// <summary>One client connection. Sends must come from one caller at a time.</summary>
public interface IBenchClient
{
    /// <summary>Completes when the receive loop ends: null when the bench closed the socket, else why it ended.</summary>
    Task<string?> Ended { get; }

    /// <summary>False for NATS: publishes get no reply (throughput is "flushed" with a ping instead).</summary>
    bool AcksPublishes { get; }

    /// <summary>Frames received (an array frame of the batch option counts once).</summary>
    long Frames { get; }

    /// <summary>Frames that held a JSON array (several server objects, the batch option).</summary>
    long ArrayFrames { get; }

    /// <summary>Payload bytes received (after decompression).</summary>
    long Bytes { get; }

    void Start(IFrameHandler handler);

    /// <summary><paramref name="last"/> &gt; 0: <c>last: N</c>; 0: from latest; -1: from earliest.</summary>
    ValueTask SubscribeAsync(long id, string topic, int last, CancellationToken ct);

    /// <summary>Publishes <paramref name="data"/> (one JSON value); <paramref name="key"/> ≥ 0 sends the key <c>"k{key}"</c>.</summary>
    ValueTask PublishAsync(long id, string topic, ReadOnlyMemory<byte> data, long key, CancellationToken ct);

    /// <summary>Answered by <see cref="FrameType.Pong"/> with the same id after everything sent before it.</summary>
    ValueTask PingAsync(long id, CancellationToken ct);

    Task CloseAsync();
}

/// <summary>How to reach a target and what to ask of the connection.</summary>
public sealed record Endpoint(Target Target, int Port, bool Batch, bool Compress)
{
    public async Task<IBenchClient> OpenAsync(CancellationToken ct) => Target == Target.Nats
        ? await NatsConn.OpenAsync(new Uri($"ws://127.0.0.1:{Port}/"), ct)
        : await Conn.OpenAsync(new Uri($"ws://127.0.0.1:{Port}/ws{(Batch ? "?batch=1" : "")}"), Compress, ct);

    internal static ClientWebSocket NewSocket(bool compress)
    {
        var ws = new ClientWebSocket();
        ws.Options.KeepAliveInterval = TimeSpan.Zero; // the servers ping; idle connections stay idle
        ws.Options.SetBuffer(4096, 4096);
        if (compress) ws.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        return ws;
    }

    internal static Task ConnectAsync(ClientWebSocket ws, Uri uri, CancellationToken ct) => ws.ConnectAsync(uri, Invoker, ct);

    /// <summary>Bytes read from the bench's sockets so far: what the server wrote (WebSocket framing included, after compression).</summary>
    public static long WireBytesReceived => CountingStream.Total;

    // One handler for every connection (an upgraded connection leaves the pool), with sockets whose
    // reads are counted.
    private static readonly HttpMessageInvoker Invoker = new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new CountingStream(new NetworkStream(socket, ownsSocket: true));
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    });

    /// <summary>A stream that adds the bytes it reads to striped counters (cheap from many threads).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        private static readonly long[] Stripes = new long[64 * 8]; // one counter per 64-byte line

        public static long Total
        {
            get
            {
                long sum = 0;
                for (var i = 0; i < Stripes.Length; i += 8) sum += Volatile.Read(ref Stripes[i]);
                return sum;
            }
        }

        private static void Count(int n)
        {
            if (n > 0) Interlocked.Add(ref Stripes[(Environment.CurrentManagedThreadId & 63) * 8], n);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            var n = await inner.ReadAsync(buffer, ct);
            Count(n);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override int Read(byte[] buffer, int offset, int count) { var n = inner.Read(buffer, offset, count); Count(n); return n; }
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => inner.WriteAsync(buffer, ct);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => inner.WriteAsync(buffer, offset, count, ct);
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);
        public override void Flush() => inner.Flush();
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
        public override ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}

/// <summary>
/// The broker's JSON protocol (and the ceiling's subset): one JSON object per text frame, or, with
/// <c>?batch=1</c>, a JSON array of them. Message frames are parsed without allocating.
/// </summary>
public sealed class Conn : IBenchClient
{
    private readonly ClientWebSocket _ws;
    private byte[] _buffer = new byte[4096];
    private byte[] _send = new byte[1024];
    private Task<string?> _receiving = Task.FromResult<string?>(null);
    private volatile bool _closing;
    private IFrameHandler _handler = null!;

    private Conn(ClientWebSocket ws) => _ws = ws;

    public static async Task<Conn> OpenAsync(Uri uri, bool compress, CancellationToken ct)
    {
        var ws = Endpoint.NewSocket(compress);
        try
        {
            await Endpoint.ConnectAsync(ws, uri, ct);
        }
        catch
        {
            ws.Dispose();
            throw;
        }
        return new Conn(ws);
    }

    public Task<string?> Ended => _receiving;
    public bool AcksPublishes => true;
    public long Frames { get; private set; }
    public long ArrayFrames { get; private set; }
    public long Bytes { get; private set; }

    public void Start(IFrameHandler handler)
    {
        _handler = handler;
        _receiving = Task.Run(ReceiveLoop);
    }

    public ValueTask SubscribeAsync(long id, string topic, int last, CancellationToken ct)
    {
        var w = new Writer(_send);
        w.Put("{\"type\":\"subscribe\",\"id\":\""u8).Put(id).Put("\",\"topic\":\""u8).Put(topic);
        if (last > 0) w.Put("\",\"last\":"u8).Put(last).Put("}"u8);
        else w.Put(last < 0 ? "\",\"from\":\"earliest\"}"u8 : "\",\"from\":\"latest\"}"u8);
        return _ws.SendAsync(_send.AsMemory(0, w.Length), WebSocketMessageType.Text, true, ct);
    }

    public ValueTask PublishAsync(long id, string topic, ReadOnlyMemory<byte> data, long key, CancellationToken ct)
    {
        var need = 96 + topic.Length + data.Length;
        if (_send.Length < need) _send = new byte[need * 2];
        var w = new Writer(_send);
        w.Put("{\"type\":\"publish\",\"id\":\""u8).Put(id).Put("\",\"topic\":\""u8).Put(topic);
        if (key >= 0) w.Put("\",\"key\":\"k"u8).Put(key);
        w.Put("\",\"data\":"u8).Put(data.Span).Put("}"u8);
        return _ws.SendAsync(_send.AsMemory(0, w.Length), WebSocketMessageType.Text, true, ct);
    }

    public ValueTask PingAsync(long id, CancellationToken ct)
    {
        var w = new Writer(_send);
        w.Put("{\"type\":\"ping\",\"id\":\""u8).Put(id).Put("\"}"u8);
        return _ws.SendAsync(_send.AsMemory(0, w.Length), WebSocketMessageType.Text, true, ct);
    }

    private async Task<string?> ReceiveLoop()
    {
        try
        {
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (count == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
                    r = await _ws.ReceiveAsync(_buffer.AsMemory(count), CancellationToken.None);
                    if (r.MessageType == WebSocketMessageType.Close)
                        return _closing ? null : $"server closed {(int?)_ws.CloseStatus} {_ws.CloseStatusDescription}";
                    count += r.Count;
                } while (!r.EndOfMessage);
                Frames++;
                Bytes += count;
                Dispatch(_buffer.AsSpan(0, count));
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            return _closing ? null : $"socket failed: {e.Message}";
        }
    }

    /// <summary>A frame: one server object, or (batch option) an array of them.</summary>
    private void Dispatch(ReadOnlySpan<byte> frame)
    {
        var start = 0;
        while (start < frame.Length && frame[start] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t') start++;
        if (start == frame.Length || frame[start] != (byte)'[')
        {
            Handle(frame[start..]);
            return;
        }
        ArrayFrames++;
        // Split [o1,o2,...] at ",{"type":"": server objects always start with "type", and that byte
        // sequence cannot occur inside a JSON string (its quotes would be escaped) nor inside the
        // bench's data (no nested "type" fields).
        var rest = frame[(start + 1)..].TrimEnd(" \r\n\t"u8);
        if (rest.Length > 0 && rest[^1] == (byte)']') rest = rest[..^1];
        while (!rest.IsEmpty)
        {
            var next = rest[1..].IndexOf(",{\"type\":\""u8);
            if (next < 0) { Handle(rest); break; }
            Handle(rest[..(next + 1)]);
            rest = rest[(next + 2)..];
        }
    }

    private void Handle(ReadOnlySpan<byte> obj)
    {
        // Fast path for messages: {"type":"message","topic":…,"pos":…,"ts":…,"data":{…},"key":…}
        if (obj.StartsWith("{\"type\":\"message\""u8))
        {
            var at = obj.IndexOf("\"data\":"u8);
            if (at >= 0 && Data.TryParse(obj[(at + 7)..], out var seq, out var sentAt, out var run))
            {
                long key = -1;
                var k = obj.LastIndexOf("\"key\":\""u8);
                if (k >= 0)
                {
                    var v = obj[(k + 7)..];
                    key = v.Length > 1 && v[0] == (byte)'k' && Utf8Parser.TryParse(v[1..], out long n, out var used) && 1 + used < v.Length && v[1 + used] == (byte)'"' ? n : -2;
                }
                _handler.OnMessage(new Delivery(seq, sentAt, run, key));
                return;
            }
        }
        ParseSlow(obj);
    }

    private void ParseSlow(ReadOnlySpan<byte> json)
    {
        FrameType type = FrameType.Other;
        long id = -1, seq = -1, sentAt = 0, run = 0, key = -1;
        string? code = null;
        try
        {
            var r = new Utf8JsonReader(json);
            while (r.Read())
            {
                if (r.TokenType != JsonTokenType.PropertyName) continue;
                if (r.CurrentDepth == 1)
                {
                    if (r.ValueTextEquals("type"u8))
                    {
                        r.Read();
                        type = r.ValueTextEquals("message"u8) ? FrameType.Message
                            : r.ValueTextEquals("ack"u8) ? FrameType.Ack
                            : r.ValueTextEquals("error"u8) ? FrameType.Error
                            : r.ValueTextEquals("subscribed"u8) ? FrameType.Subscribed
                            : r.ValueTextEquals("unsubscribed"u8) ? FrameType.Unsubscribed
                            : r.ValueTextEquals("pong"u8) ? FrameType.Pong
                            : FrameType.Other;
                    }
                    else if (r.ValueTextEquals("id"u8))
                    {
                        r.Read();
                        if (!Utf8Parser.TryParse(r.ValueSpan, out id, out var used) || used != r.ValueSpan.Length) id = -1;
                    }
                    else if (r.ValueTextEquals("code"u8)) { r.Read(); code = r.GetString(); }
                    else if (r.ValueTextEquals("key"u8))
                    {
                        r.Read();
                        var v = r.ValueSpan;
                        key = r.TokenType == JsonTokenType.String && !r.ValueIsEscaped && v.Length > 1 && v[0] == (byte)'k'
                            && Utf8Parser.TryParse(v[1..], out long n, out var used) && used == v.Length - 1 && n >= 0 ? n : -2;
                    }
                    else if (r.ValueTextEquals("data"u8))
                    {
                        r.Read();
                        if (r.TokenType != JsonTokenType.StartObject) r.Skip(); // else read on into data
                    }
                    else { r.Read(); r.Skip(); }
                }
                else if (r.CurrentDepth == 2)
                {
                    if (r.ValueTextEquals("s"u8)) { r.Read(); seq = r.GetInt64(); }
                    else if (r.ValueTextEquals("t"u8)) { r.Read(); sentAt = r.GetInt64(); }
                    else if (r.ValueTextEquals("r"u8)) { r.Read(); run = r.GetInt64(); }
                    else { r.Read(); r.Skip(); }
                }
            }
        }
        catch (JsonException)
        {
            type = FrameType.Other;
        }
        if (type == FrameType.Message) _handler.OnMessage(new Delivery(seq, sentAt, run, key));
        else _handler.OnReply(type, id, code);
    }

    /// <summary>Closes politely (1000) and waits a little for the server's close; aborts otherwise.</summary>
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

/// <summary>The bench's <c>data</c>: <c>{"t":sent,"s":seq,"r":run,…}</c>, always in that order, then padding or a realistic body.</summary>
public static class Data
{
    /// <summary>Reads t, s and r from the start of a data object (the bench writes them first).</summary>
    public static bool TryParse(ReadOnlySpan<byte> data, out long seq, out long sentAt, out long run)
    {
        seq = sentAt = run = 0;
        if (!data.StartsWith("{\"t\":"u8) || !Utf8Parser.TryParse(data[5..], out sentAt, out var n)) return false;
        data = data[(5 + n)..];
        if (!data.StartsWith(",\"s\":"u8) || !Utf8Parser.TryParse(data[5..], out seq, out n)) return false;
        data = data[(5 + n)..];
        return data.StartsWith(",\"r\":"u8) && Utf8Parser.TryParse(data[5..], out run, out _);
    }

    private static readonly byte[] JsonBody = Encoding.UTF8.GetBytes(
        ",\"event\":\"order.updated\",\"user\":{\"id\":\"u-48213\",\"name\":\"Ada Lovelace\",\"locale\":\"en-GB\"},"
        + "\"order\":{\"id\":\"o-7f3a9c21\",\"status\":\"shipped\",\"items\":3,\"total\":{\"amount\":\"129.90\",\"currency\":\"EUR\"}},"
        + "\"carrier\":\"DHL\",\"tracking\":\"JD0146000062812\",\"updated_at\":\"2026-11-30T13:42:00Z\",\"note\":\"Leave at the front door\"}");

    /// <summary>
    /// Writes one data value into <paramref name="buffer"/>: <paramref name="size"/> bytes in all with
    /// <c>"p":"xxx…"</c> padding, or (<paramref name="json"/>) a ~300-byte order update (for compression).
    /// </summary>
    public static int Write(byte[] buffer, long sentAt, long seq, long run, int size, bool json)
    {
        var w = new Writer(buffer);
        w.Put("{\"t\":"u8).Put(sentAt).Put(",\"s\":"u8).Put(seq).Put(",\"r\":"u8).Put(run);
        if (json) return w.Put(",\"seq_id\":\"o-"u8).Put(seq).Put("\""u8).Put(JsonBody).Length;
        w.Put(",\"p\":\""u8);
        var pad = Math.Max(0, size - w.Length - 2);
        buffer.AsSpan(w.Length, pad).Fill((byte)'x');
        return w.Skip(pad).Put("\"}"u8).Length;
    }
}

/// <summary>Appends UTF-8 pieces to a byte array (sized by the caller).</summary>
public ref struct Writer(byte[] buffer)
{
    private readonly byte[] _buffer = buffer;
    public int Length { get; private set; }

    [UnscopedRef] public ref Writer Put(ReadOnlySpan<byte> s) { s.CopyTo(_buffer.AsSpan(Length)); Length += s.Length; return ref this; }
    [UnscopedRef] public ref Writer Put(long v) { Utf8Formatter.TryFormat(v, _buffer.AsSpan(Length), out var n); Length += n; return ref this; }
    [UnscopedRef] public ref Writer Put(string ascii) { Length += Encoding.UTF8.GetBytes(ascii, _buffer.AsSpan(Length)); return ref this; }
    [UnscopedRef] public ref Writer Skip(int n) { Length += n; return ref this; }
}
