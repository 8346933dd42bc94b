using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// A real <see cref="ClientWebSocket"/> with a background reader that queues every frame, so
/// tests wait for the frame they expect with a timeout instead of sleeping. For tests of the wire
/// protocol itself (exact frames, malformed input, close codes, handshake and headers, auth frames,
/// batching, limits, resends with a chosen request id); tests that are ordinary clients of the
/// broker use Broker.Client through <see cref="BrokerClients"/>.
/// </summary>
public sealed class WsClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    private readonly ClientWebSocket _socket;
    private readonly Channel<JsonObject> _frames = Channel.CreateUnbounded<JsonObject>();
    private readonly TaskCompletionSource<(WebSocketCloseStatus? Status, string? Reason)> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _send = new(1, 1);
    private Task _reader = Task.CompletedTask;

    private WsClient(ClientWebSocket socket) => _socket = socket;

    public ClientWebSocket Socket => _socket;

    private int _arrayFrames, _largestArrayFrame;
    private readonly ConcurrentQueue<string> _texts = new();
    private volatile bool _keepTexts;
    private volatile string? _badFrame;

    /// <summary>From now on, keeps the text of every frame as the server sent it (<see cref="Texts"/>), for tests of the exact bytes.</summary>
    public void KeepTexts() => _keepTexts = true;

    /// <summary>The frames received since <see cref="KeepTexts"/>, unparsed, in order.</summary>
    public IReadOnlyList<string> Texts => [.. _texts];

    /// <summary>Frames that held a JSON array of server objects (only a client connected with <c>?batch=1</c> gets them).</summary>
    public int ArrayFrames => Volatile.Read(ref _arrayFrames);

    /// <summary>Bytes of the largest array frame received.</summary>
    public int LargestArrayFrame => Volatile.Read(ref _largestArrayFrame);

    private static void InterlockedMax(ref int target, int value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen && Interlocked.CompareExchange(ref target, value, seen) is var actual && actual != seen) seen = actual;
    }

    /// <summary>Completes with the close status the server sent (or null when the connection just dropped).</summary>
    public Task<(WebSocketCloseStatus? Status, string? Reason)> Closed => _closed.Task;

    /// <param name="configure">Sets request headers (Authorization, Origin), certificate validation, ...</param>
    public static async Task<WsClient> ConnectAsync(Uri uri, bool startReading = true, Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        configure?.Invoke(socket.Options);
        await socket.ConnectAsync(uri, new CancellationTokenSource(DefaultTimeout).Token);
        var client = new WsClient(socket);
        if (startReading) client.StartReading();
        return client;
    }

    /// <summary>An upgrade the server refused: its HTTP status and response headers.</summary>
    public sealed record Refusal(System.Net.HttpStatusCode Status, IReadOnlyDictionary<string, IEnumerable<string>> Headers)
    {
        /// <summary>The <c>Retry-After</c> header in seconds, or null without one.</summary>
        public int? RetryAfterSeconds =>
            Headers.FirstOrDefault(h => h.Key.Equals("Retry-After", StringComparison.OrdinalIgnoreCase)).Value?.FirstOrDefault() is { } v && int.TryParse(v, out var s) ? s : null;
    }

    /// <summary>
    /// Tries an upgrade: the connected client, or the HTTP status and headers the server refused it
    /// with (origin, connection caps). Other failures (no answer within the timeout) throw.
    /// </summary>
    public static async Task<(WsClient? Client, Refusal? Refused)> TryConnectAsync(Uri uri, Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        configure?.Invoke(socket.Options);
        try
        {
            using var cts = new CancellationTokenSource(DefaultTimeout);
            await socket.ConnectAsync(uri, cts.Token);
        }
        catch (WebSocketException) when (socket.HttpStatusCode != 0)
        {
            var refusal = new Refusal(socket.HttpStatusCode, socket.HttpResponseHeaders ?? new Dictionary<string, IEnumerable<string>>());
            socket.Dispose();
            return (null, refusal);
        }
        var client = new WsClient(socket);
        client.StartReading();
        return (client, null);
    }

    /// <summary>
    /// Tries an upgrade that the server must refuse and returns the HTTP status and headers it
    /// answered with; fails the test (after closing the connection) if the upgrade was accepted.
    /// </summary>
    public static async Task<Refusal> RefusedUpgradeAsync(Uri uri, Action<ClientWebSocketOptions>? configure = null)
    {
        var (client, refused) = await TryConnectAsync(uri, configure);
        if (refused is not null) return refused;
        await client!.DisposeAsync();
        throw new Xunit.Sdk.XunitException($"the upgrade to {uri} was accepted; a refusal was expected");
    }

    /// <summary>
    /// Opens connections with <paramref name="attempt"/> (called with 0, 1, …) until the server
    /// refuses one, at most <paramref name="max"/>: the clients it accepted (the caller disposes
    /// them) and the refusal, null when none came.
    /// </summary>
    public static async Task<(List<WsClient> Open, Refusal? Refused)> ConnectUntilRefusedAsync(Func<int, Task<(WsClient? Client, Refusal? Refused)>> attempt, int max)
    {
        var open = new List<WsClient>();
        for (var i = 0; i < max; i++)
        {
            var (client, refused) = await attempt(i);
            if (refused is not null) return (open, refused);
            open.Add(client!);
        }
        return (open, null);
    }

    /// <summary>Starts the background reader (a test of slow consumers connects without it).</summary>
    public void StartReading() => _reader = Task.Run(ReadLoop);

    private async Task ReadLoop()
    {
        var buffer = new byte[1 << 20];
        try
        {
            while (true)
            {
                var count = 0;
                WebSocketReceiveResult r;
                do
                {
                    r = await _socket.ReceiveAsync(new ArraySegment<byte>(buffer, count, buffer.Length - count), CancellationToken.None);
                    count += r.Count;
                } while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    _closed.TrySetResult((r.CloseStatus, r.CloseStatusDescription));
                    return;
                }
                var text = Encoding.UTF8.GetString(buffer, 0, count);
                if (_keepTexts) _texts.Enqueue(text);
                JsonNode node;
                try
                {
                    node = JsonNode.Parse(text)!;
                }
                catch (JsonException e)
                {
                    _badFrame = $"the server sent a frame that is not one JSON value ({e.Message}): {text}";
                    throw;
                }
                if (node is JsonArray array)
                {
                    // A batching client (?batch=1) gets several server objects in one frame.
                    Interlocked.Increment(ref _arrayFrames);
                    InterlockedMax(ref _largestArrayFrame, count);
                    foreach (var item in array) await _frames.Writer.WriteAsync(item!.DeepClone().AsObject());
                }
                else await _frames.Writer.WriteAsync(node.AsObject());
            }
        }
        catch (Exception)
        {
            _closed.TrySetResult((_socket.CloseStatus, _socket.CloseStatusDescription));
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }

    public async Task SendTextAsync(string text)
    {
        await _send.WaitAsync();
        try { await _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None); }
        finally { _send.Release(); }
    }

    public Task SendAsync(object request) => SendTextAsync(JsonSerializer.Serialize(request));

    public async Task SendBinaryAsync(byte[] bytes)
    {
        await _send.WaitAsync();
        try { await _socket.SendAsync(bytes, WebSocketMessageType.Binary, true, CancellationToken.None); }
        finally { _send.Release(); }
    }

    /// <summary>The next frame from the server.</summary>
    public async Task<JsonObject> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            return await _frames.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("no frame from the server within the timeout");
        }
        catch (ChannelClosedException)
        {
            if (_badFrame is { } bad) throw new InvalidOperationException(bad);
            var (status, reason) = await Closed;
            throw new InvalidOperationException($"connection closed ({status} {reason}) while waiting for a frame");
        }
    }

    /// <summary>The next frame of the given type, skipping none: fails if another type comes first.</summary>
    public async Task<JsonObject> ExpectAsync(string type, TimeSpan? timeout = null)
    {
        var frame = await ReceiveAsync(timeout);
        if ((string?)frame["type"] != type) throw new InvalidOperationException($"expected {type}, got {frame.ToJsonString()}");
        return frame;
    }

    /// <summary>Pings; "pong" when the very next frame is its pong, else that frame as JSON (an error that came instead, for the assertion message).</summary>
    public async Task<string> PingAsync(string id)
    {
        await SendAsync(new { type = "ping", id });
        var frame = await ReceiveAsync();
        return (string?)frame["type"] == "pong" && (string?)frame["id"] == id ? "pong" : frame.ToJsonString();
    }

    /// <summary>
    /// The next frame is an <c>error</c> with <paramref name="code"/> and then the server closes the
    /// connection with <paramref name="status"/> and <paramref name="reason"/> (a refused token, a
    /// connection cap met at the first-frame <c>auth</c>); returns the error.
    /// </summary>
    public async Task<JsonObject> ExpectErrorThenCloseAsync(string code, WebSocketCloseStatus status, string reason)
    {
        var error = await ExpectAsync("error");
        Assert.Equal(code, (string?)error["code"]);
        var (closeStatus, closeReason) = await Closed.WaitAsync(DefaultTimeout);
        Assert.Equal(status, closeStatus);
        Assert.Equal(reason, closeReason);
        return error;
    }

    /// <summary>The next frame answering request <paramref name="id"/> (messages before it are returned in <paramref name="skipped"/>).</summary>
    public async Task<JsonObject> ReplyToAsync(string id, List<JsonObject>? skipped = null, TimeSpan? timeout = null)
    {
        while (true)
        {
            var f = await ReceiveAsync(timeout);
            if ((string?)f["id"] == id) return f;
            skipped?.Add(f);
        }
    }

    /// <summary>The next <paramref name="count"/> <c>message</c> frames (other frames in between are skipped).</summary>
    public async Task<List<JsonObject>> MessagesAsync(int count, TimeSpan? timeout = null)
    {
        var got = new List<JsonObject>(count);
        while (got.Count < count)
        {
            var f = await ReceiveAsync(timeout);
            if ((string?)f["type"] == "message") got.Add(f);
        }
        return got;
    }

    public async Task<JsonObject> RequestAsync(object request, string id)
    {
        await SendAsync(request);
        return await ReplyToAsync(id);
    }

    public async Task<JsonObject> SubscribeAsync(string topic, string id = "sub", object? extra = null)
    {
        var req = new JsonObject { ["type"] = "subscribe", ["id"] = id, ["topic"] = topic };
        if (extra is not null)
            foreach (var (k, v) in JsonSerializer.SerializeToNode(extra)!.AsObject()) req[k] = v?.DeepClone();
        var reply = await RequestAsync(req, id);
        if ((string?)reply["type"] != "subscribed") throw new InvalidOperationException("subscribe failed: " + reply.ToJsonString());
        return reply;
    }

    public async Task<string> PublishAsync(string topic, object? data, string id, string? key = null)
    {
        var req = new JsonObject { ["type"] = "publish", ["id"] = id, ["topic"] = topic, ["data"] = JsonSerializer.SerializeToNode(data) };
        if (key is not null) req["key"] = key;
        var reply = await RequestAsync(req, id);
        if ((string?)reply["type"] != "ack") throw new InvalidOperationException("publish failed: " + reply.ToJsonString());
        return (string)reply["pos"]!;
    }

    /// <summary>
    /// Publishes on a connection that is subscribed to the topic itself and returns the ack's pos and
    /// its own message, which may come before the ack (the feed can be faster than the writer's answer).
    /// </summary>
    public async Task<(string Pos, JsonObject Message)> PublishToSelfAsync(string topic, object? data, string id)
    {
        await SendAsync(new JsonObject { ["type"] = "publish", ["id"] = id, ["topic"] = topic, ["data"] = JsonSerializer.SerializeToNode(data) });
        var before = new List<JsonObject>();
        var reply = await ReplyToAsync(id, before);
        if ((string?)reply["type"] != "ack") throw new InvalidOperationException("publish failed: " + reply.ToJsonString());
        var message = before.Find(f => (string?)f["type"] == "message") ?? await ExpectAsync("message");
        return ((string)reply["pos"]!, message);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
            }
            await _reader.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // best effort
        }
        _socket.Dispose();
    }
}
