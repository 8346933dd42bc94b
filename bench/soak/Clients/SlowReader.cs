using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Broker.Soak.Clients;

/// <summary>
/// A subscriber that stops reading. Its socket has a 4 KiB receive buffer (the client library cannot
/// shrink one), so what the broker sends piles up in the broker: once the connection's outbound
/// buffer is full the broker must close it with 1013 and go on serving everybody else. The reader
/// then drains what reached it, reconnects to the next node and resumes every topic with
/// <c>since</c> = the last position it received: nothing may be missing or repeated.
/// </summary>
public sealed class SlowReader(string name, string clientId, IReadOnlyList<string> topics)
{
    private const int ReceiveBuffer = 4096;
    private readonly Dictionary<string, SubscriberStream> _streams = topics.ToDictionary(t => t, t => new SubscriberStream(name, 1, t, null, strictStart: true));

    public string Name { get; } = name;
    public string ClientId { get; } = clientId;
    public IReadOnlyList<string> Topics { get; } = topics;
    public ConnectionStats Stats { get; } = new();
    public IEnumerable<SubscriberStream> Streams => _streams.Values;

    /// <summary>Whether the broker closed it as a slow consumer while it did not read (null: the episode did not get that far).</summary>
    public bool? ClosedAsSlowConsumer { get; set; }

    /// <summary>Connects to <paramref name="node"/> and subscribes every topic from where it stopped (the log's start at first).</summary>
    public async Task<WebSocket> ConnectAsync(Uri node, CancellationToken ct)
    {
        var ws = RawWebSocket.Wrap(await RawWebSocket.UpgradeAsync(node, "client=" + ClientId, ReceiveBuffer, ct));
        try
        {
            var n = 0;
            foreach (var (topic, stream) in _streams)
            {
                var from = stream.LastPos is { } pos ? $"\"since\":\"{pos}\"" : "\"from\":\"earliest\"";
                await ws.SendAsync(Encoding.UTF8.GetBytes($$"""{"type":"subscribe","id":"s{{++n}}","topic":"{{topic}}",{{from}}}"""),
                    WebSocketMessageType.Text, true, ct);
            }
            // Until both are confirmed (messages of the first may already arrive).
            var confirmed = 0;
            while (confirmed < _streams.Count)
            {
                var frame = await ReceiveAsync(ws, ct) ?? throw new WebSocketException("closed before the subscriptions were confirmed");
                if (frame == "subscribed") confirmed++;
                else if (frame == "error") throw new InvalidOperationException("a subscribe was refused");
            }
        }
        catch
        {
            ws.Abort();
            ws.Dispose();
            throw;
        }
        return ws;
    }

    /// <summary>Reads until the connection ends; returns the close code (1006 when it was reset or dropped).</summary>
    public async Task<int> DrainAsync(WebSocket ws, CancellationToken ct)
    {
        try
        {
            while (await ReceiveAsync(ws, ct) is not null)
            {
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException && !ct.IsCancellationRequested)
        {
            // reset
        }
        var code = ws.CloseStatus is { } status ? (int)status : 1006;
        ws.Abort();
        ws.Dispose();
        Stats.Count(code);
        return code;
    }

    /// <summary>
    /// Reads until <paramref name="done"/> says so (then closes normally); throws
    /// <see cref="WebSocketException"/> when the connection ends before (the caller reconnects).
    /// </summary>
    public async Task ReadUntilAsync(WebSocket ws, Func<bool> done, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watcher = Task.Run(async () =>
        {
            while (!done()) await Task.Delay(250, stop.Token);
            using var t = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", t.Token);
        }, CancellationToken.None);
        int? ended = null;
        try
        {
            while (await ReceiveAsync(ws, ct) is not null)
            {
            }
            if (!done()) ended = ws.CloseStatus is { } c ? (int)c : 1006;
        }
        catch (Exception e) when (e is IOException or WebSocketException && !done())
        {
            ended = 1006;
        }
        catch (Exception e) when (e is IOException or WebSocketException && done())
        {
            // our own close crossed the broker's answer
        }
        finally
        {
            stop.Cancel();
            ws.Abort();
            ws.Dispose();
            try { await watcher; }
            catch (Exception) { /* stopped, or the close could not be sent */ }
        }
        if (ended is { } code)
        {
            Stats.Count(code);
            throw new WebSocketException($"the connection ended ({code}) before the reader was done");
        }
    }

    /// <summary>The distinct messages received on <paramref name="topic"/>.</summary>
    public int Distinct(string topic) => _streams[topic].Delivered.Distinct().Count();

    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);

    /// <summary>One frame: records a message and returns the frame's type; null when the connection was closed.</summary>
    private async Task<string?> ReceiveAsync(WebSocket ws, CancellationToken ct)
    {
        _buffer.ResetWrittenCount();
        while (true)
        {
            var r = await ws.ReceiveAsync(_buffer.GetMemory(16 * 1024), ct);
            if (r.MessageType == WebSocketMessageType.Close) return null;
            _buffer.Advance(r.Count);
            if (r.EndOfMessage) break;
        }
        using var doc = JsonDocument.Parse(_buffer.WrittenMemory);
        var f = doc.RootElement;
        var type = f.GetProperty("type").GetString();
        if (type == "message" && f.TryGetProperty("topic", out var t) && _streams.TryGetValue(t.GetString()!, out var stream))
        {
            var data = f.GetProperty("data").GetRawText();
            if (!Payload.TryDecode(Encoding.UTF8.GetBytes(data), out var id)) id = new MsgId("?", -1);
            stream.Add(id, f.GetProperty("pos").GetString()!, afterGap: false);
        }
        else if (type == "subscribed" && f.TryGetProperty("recovered", out var rec) && rec.ValueKind == JsonValueKind.False && f.TryGetProperty("topic", out var st)
                 && _streams.TryGetValue(st.GetString()!, out var gapStream))
        {
            gapStream.MarkGap();
        }
        return type;
    }
}
