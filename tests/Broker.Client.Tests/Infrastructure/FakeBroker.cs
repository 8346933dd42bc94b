using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Client.Tests.Infrastructure;

/// <summary>
/// A scripted broker: real Kestrel on a free loopback port, <c>/ws</c> accepts WebSockets and hands
/// each connection to the test (<see cref="NextConnectionAsync"/>), which reads the client's frames
/// and answers them by hand. <c>/v1/publish</c> is answered by <see cref="HttpHandler"/>.
/// </summary>
public sealed class FakeBroker : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly WebApplication _app;
    private readonly Channel<FakeConnection> _connections = Channel.CreateUnbounded<FakeConnection>();

    private FakeBroker(WebApplication app) => _app = app;

    public Uri WsUri { get; private set; } = null!;
    public Uri HttpUri { get; private set; } = null!;

    /// <summary>Upgrades refused so far with a status (see <see cref="RefuseUpgrades"/>).</summary>
    public int Refused => Volatile.Read(ref _refused);

    private int _refused;
    private readonly Queue<(int Status, string? RetryAfter)> _refusals = new();

    /// <summary>The next upgrades are refused with these HTTP statuses, in order.</summary>
    public void RefuseUpgrades(params (int Status, string? RetryAfter)[] refusals)
    {
        lock (_refusals) foreach (var r in refusals) _refusals.Enqueue(r);
    }

    /// <summary>Answers <c>POST /v1/publish</c>.</summary>
    public Func<HttpContext, Task>? HttpHandler { get; set; }

    public static async Task<FakeBroker> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var fake = new FakeBroker(app);
        app.UseWebSockets();
        app.Map("/ws", fake.AcceptAsync);
        app.MapPost("/v1/publish", (HttpContext c) => fake.HttpHandler?.Invoke(c) ?? Task.CompletedTask);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        fake.HttpUri = new Uri(address.Replace("localhost", "127.0.0.1"));
        fake.WsUri = new Uri(fake.HttpUri.ToString().Replace("http://", "ws://") + "ws");
        return fake;
    }

    private async Task AcceptAsync(HttpContext context)
    {
        (int Status, string? RetryAfter)? refuse = null;
        lock (_refusals)
            if (_refusals.Count > 0) refuse = _refusals.Dequeue();
        if (refuse is { } r)
        {
            Interlocked.Increment(ref _refused);
            context.Response.StatusCode = r.Status;
            if (r.RetryAfter is not null) context.Response.Headers.RetryAfter = r.RetryAfter;
            return;
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var connection = new FakeConnection(socket, context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString()));
        await _connections.Writer.WriteAsync(connection);
        await connection.RunAsync();
    }

    /// <summary>The next connection the client opens (bounded wait).</summary>
    public async Task<FakeConnection> NextConnectionAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        try
        {
            return await _connections.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("the client did not connect");
        }
    }

    /// <summary>True when no connection is waiting to be taken within <paramref name="within"/>.</summary>
    public async Task<bool> NoConnectionWithinAsync(TimeSpan within)
    {
        using var cts = new CancellationTokenSource(within);
        try
        {
            await _connections.Reader.WaitToReadAsync(cts.Token);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}

/// <summary>One client connection, driven by the test.</summary>
public sealed class FakeConnection
{
    private readonly WebSocket _socket;
    private readonly Channel<JsonObject> _frames = Channel.CreateUnbounded<JsonObject>();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _send = new(1, 1);

    public FakeConnection(WebSocket socket, IReadOnlyDictionary<string, string> query)
    {
        _socket = socket;
        Query = query;
    }

    public IReadOnlyDictionary<string, string> Query { get; }

    /// <summary>Completes when the client closed or the connection dropped.</summary>
    public Task Done => _done.Task;

    public WebSocketCloseStatus? ClientCloseStatus { get; private set; }

    internal async Task RunAsync()
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
                    ClientCloseStatus = r.CloseStatus;
                    if (_socket.State == WebSocketState.CloseReceived)
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
                    break;
                }
                await _frames.Writer.WriteAsync(JsonNode.Parse(Encoding.UTF8.GetString(buffer, 0, count))!.AsObject());
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            _frames.Writer.TryComplete();
            _done.TrySetResult();
        }
    }

    /// <summary>The next frame from the client.</summary>
    public async Task<JsonObject> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? FakeBroker.Timeout);
        try
        {
            return await _frames.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("no frame from the client within the timeout");
        }
    }

    /// <summary>The next frame, which must be of <paramref name="type"/>.</summary>
    public async Task<JsonObject> ExpectAsync(string type, TimeSpan? timeout = null)
    {
        var f = await ReceiveAsync(timeout);
        Assert.True((string?)f["type"] == type, $"expected {type}, got {f.ToJsonString()}");
        return f;
    }

    /// <summary>True when the client sends nothing within <paramref name="within"/>.</summary>
    public async Task<bool> SilentForAsync(TimeSpan within)
    {
        using var cts = new CancellationTokenSource(within);
        try
        {
            return !await _frames.Reader.WaitToReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    public async Task SendTextAsync(string json)
    {
        await _send.WaitAsync();
        try { await _socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None); }
        finally { _send.Release(); }
    }

    public Task SendAsync(JsonObject frame) => SendTextAsync(frame.ToJsonString());

    public Task SendAsync(params JsonObject[] batch) => SendTextAsync(new JsonArray([.. batch]).ToJsonString());

    public Task SubscribedAsync(JsonObject request, string head, bool? recovered = null)
    {
        var reply = new JsonObject { ["type"] = "subscribed", ["id"] = (string?)request["id"], ["topic"] = (string?)request["topic"], ["pos"] = head };
        if (recovered is { } r) reply["recovered"] = r;
        return SendAsync(reply);
    }

    public Task AckAsync(JsonObject publish, string pos) =>
        SendAsync(new JsonObject { ["type"] = "ack", ["id"] = (string?)publish["id"], ["topic"] = (string?)publish["topic"], ["pos"] = pos });

    public Task MessageAsync(string topic, string pos, JsonNode? data, string? key = null)
    {
        var m = new JsonObject { ["type"] = "message", ["topic"] = topic, ["pos"] = pos, ["ts"] = 1_700_000_000_000, ["data"] = data };
        if (key is not null) m["key"] = key;
        return SendAsync(m);
    }

    public async Task CloseAsync(int code, string reason)
    {
        await _send.WaitAsync();
        try { await _socket.CloseOutputAsync((WebSocketCloseStatus)code, reason, CancellationToken.None); }
        finally { _send.Release(); }
    }

    /// <summary>Drops the TCP connection without a close frame (what a killed process looks like).</summary>
    public void Abort() => _socket.Abort();
}

/// <summary>Positions as the broker encodes them (base64url of version 1, a varint count and varint next-offsets).</summary>
public static class Pos
{
    public static string Of(params long[] next)
    {
        var bytes = new List<byte> { 1 };
        Varint(bytes, (ulong)next.Length);
        foreach (var n in next) Varint(bytes, (ulong)n);
        return Convert.ToBase64String(bytes.ToArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    private static void Varint(List<byte> bytes, ulong v)
    {
        while (v >= 0x80)
        {
            bytes.Add((byte)(v | 0x80));
            v >>= 7;
        }
        bytes.Add((byte)v);
    }
}

/// <summary>JSON values for publishes.</summary>
public static class Json
{
    public static JsonElement Of(object value) => JsonSerializer.SerializeToElement(value);
}
