// The ".NET ceiling" of the benchmark: what a competent developer writes in an afternoon with bare
// Kestrel. In-memory fanout over the broker's JSON protocol subset (subscribe → subscribed,
// unsubscribe → unsubscribed, publish → ack, ping → pong, message frames with a per-topic counter
// as pos), one message per text frame, a bounded channel and one send loop per connection,
// zero-byte reads while idle. No log, no positions to resume from, no cluster.
//   usage: Ceiling --port 8090
using System.Buffers;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

var port = args is ["--port", var p] ? int.Parse(p) : 8090;
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
var app = builder.Build();
app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(15) });
var topics = new ConcurrentDictionary<string, Topic>(StringComparer.Ordinal);
app.MapGet("/healthz", () => "ok");
app.Map("/ws", async ctx =>
{
    if (!ctx.WebSockets.IsWebSocketRequest) { ctx.Response.StatusCode = 400; return; }
    // permessage-deflate only when the client offers it (the bench's --compress).
    using var ws = await ctx.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { DangerousEnableCompression = true });
    await new Client(ws, topics).RunAsync();
});
Console.WriteLine($"ceiling listening on 127.0.0.1:{port}");
app.Run();

/// <summary>A topic: its subscribers (copy on write) and a counter that numbers its messages.</summary>
sealed class Topic
{
    public readonly object Lock = new();
    public Client[] Subscribers = [];
    public long Count;

    public void Remove(Client c) { lock (Lock) Subscribers = Array.FindAll(Subscribers, x => x != c); }
}

sealed class Client(WebSocket ws, ConcurrentDictionary<string, Topic> topics)
{
    private const int MaxFrame = 64 * 1024;
    // Like the broker's outbound-buffer-frames: a connection that falls this far behind is closed.
    private readonly Channel<byte[]> _out = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(4096) { SingleReader = true });
    private readonly Dictionary<string, Topic> _subscribed = new(StringComparer.Ordinal);
    private volatile bool _slow;

    public async Task RunAsync()
    {
        var sending = SendLoop();
        try { await ReceiveLoop(); }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
        finally
        {
            foreach (var t in _subscribed.Values) t.Remove(this);
            _out.Writer.TryComplete();
            await sending;
            if (ws.State == WebSocketState.CloseReceived)
            {
                try { await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None); }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
            }
        }
    }

    /// <summary>Queues a frame; a full queue closes the connection (slow consumer).</summary>
    public void Send(byte[] frame)
    {
        if (_out.Writer.TryWrite(frame)) return;
        _slow = true;
        _out.Writer.TryComplete();
    }

    private async Task SendLoop()
    {
        var reader = _out.Reader;
        try
        {
            while (await reader.WaitToReadAsync())
                while (reader.TryRead(out var frame))
                    await ws.SendAsync(frame, WebSocketMessageType.Text, true, CancellationToken.None);
            if (_slow) await ws.CloseOutputAsync((WebSocketCloseStatus)1013, "slow_consumer", CancellationToken.None);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException) { }
        if (_slow) ws.Abort();
    }

    private async Task ReceiveLoop()
    {
        while (!_slow)
        {
            // Zero-byte read: an idle connection holds no receive buffer.
            var r = await ws.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
            if (r.MessageType == WebSocketMessageType.Close) break;
            var buffer = ArrayPool<byte>.Shared.Rent(4096);
            try
            {
                var count = 0;
                do
                {
                    if (count == buffer.Length)
                    {
                        if (count >= MaxFrame) { await ws.CloseOutputAsync(WebSocketCloseStatus.MessageTooBig, "too big", default); return; }
                        var bigger = ArrayPool<byte>.Shared.Rent(count * 2);
                        buffer.AsSpan(0, count).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    r = await ws.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                    if (r.MessageType == WebSocketMessageType.Close) return;
                    count += r.Count;
                } while (!r.EndOfMessage);
                Handle(buffer.AsSpan(0, count));
            }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
        }
    }

    private void Handle(ReadOnlySpan<byte> json)
    {
        string? type = null, id = null, topic = null;
        ReadOnlySpan<byte> data = default;
        try
        {
            var r = new Utf8JsonReader(json);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) { Error(null, "bad_request"); return; }
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("type"u8)) { r.Read(); type = r.GetString(); }
                else if (r.ValueTextEquals("id"u8)) { r.Read(); id = r.GetString(); }
                else if (r.ValueTextEquals("topic"u8)) { r.Read(); topic = r.GetString(); }
                else if (r.ValueTextEquals("data"u8))
                {
                    r.Read();
                    var start = (int)r.TokenStartIndex;
                    r.Skip();
                    data = json[start..(int)r.BytesConsumed];
                }
                else { r.Read(); r.Skip(); }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { Error(id, "bad_request"); return; }
        if (type == "ping") { Send(Frame(w => { w.WriteString("type", "pong"); if (id != null) w.WriteString("id", id); })); return; }
        if (string.IsNullOrEmpty(topic)) { Error(id, "bad_request"); return; }
        switch (type)
        {
            case "subscribe":
                var t = topics.GetOrAdd(topic, _ => new Topic());
                long head;
                lock (t.Lock)
                {
                    if (_subscribed.TryAdd(topic, t)) t.Subscribers = [.. t.Subscribers, this];
                    head = t.Count;
                }
                Send(Frame(w => { w.WriteString("type", "subscribed"); if (id != null) w.WriteString("id", id); w.WriteString("topic", topic); w.WriteString("pos", head.ToString()); }));
                break;
            case "unsubscribe":
                if (!_subscribed.Remove(topic, out var old)) { Error(id, "not_found"); return; }
                old.Remove(this);
                Send(Frame(w => { w.WriteString("type", "unsubscribed"); if (id != null) w.WriteString("id", id); w.WriteString("topic", topic); }));
                break;
            case "publish" when !data.IsEmpty:
                Publish(id, topic, data);
                break;
            default:
                Error(id, "bad_request");
                break;
        }
    }

    private void Publish(string? id, string topic, ReadOnlySpan<byte> data)
    {
        var t = topics.GetOrAdd(topic, _ => new Topic());
        long pos;
        lock (t.Lock) // one order per topic: numbering and queueing happen together
        {
            pos = ++t.Count;
            var frame = Message(topic, pos, data);
            foreach (var s in t.Subscribers) s.Send(frame); // the same bytes for every subscriber
        }
        Send(Frame(w => { w.WriteString("type", "ack"); if (id != null) w.WriteString("id", id); w.WriteString("topic", topic); w.WriteString("pos", pos.ToString()); }));
    }

    private static byte[] Message(string topic, long pos, ReadOnlySpan<byte> data)
    {
        var ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var frame = new byte[96 + topic.Length + data.Length];
        var n = 0;
        void Put(ReadOnlySpan<byte> s) { s.CopyTo(frame.AsSpan(n)); n += s.Length; }
        Put("{\"type\":\"message\",\"topic\":\""u8);
        n += Encoding.UTF8.GetBytes(topic, frame.AsSpan(n)); // topic names need no escaping
        Put("\",\"pos\":\""u8);
        Utf8Formatter.TryFormat(pos, frame.AsSpan(n), out var w1); n += w1;
        Put("\",\"ts\":"u8);
        Utf8Formatter.TryFormat(ts, frame.AsSpan(n), out var w2); n += w2;
        Put(",\"data\":"u8);
        Put(data);
        Put("}"u8);
        return frame[..n];
    }

    private void Error(string? id, string code) =>
        Send(Frame(w => { w.WriteString("type", "error"); if (id != null) w.WriteString("id", id); w.WriteString("code", code); w.WriteString("message", code); }));

    private static byte[] Frame(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
