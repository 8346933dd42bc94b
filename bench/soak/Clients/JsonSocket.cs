using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Broker.Soak.Clients;

/// <summary>
/// A WebSocket speaking the broker's JSON protocol one object per frame, for the soak's clients that
/// must choose their own request ids (the client library numbers them itself): the probe publisher
/// and the aborted clients' resends.
/// </summary>
public sealed class JsonSocket : IAsyncDisposable
{
    private readonly WebSocket _socket;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);

    private JsonSocket(WebSocket socket) => _socket = socket;

    public static async Task<JsonSocket> ConnectAsync(Uri endpoint, string query, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await socket.ConnectAsync(new UriBuilder(endpoint) { Query = query }.Uri, timeout.Token);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new JsonSocket(socket);
    }

    public Task SendAsync(string json, CancellationToken ct) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, ct);

    /// <summary>The next frame as JSON; throws <see cref="WebSocketException"/> when the connection ended.</summary>
    public async Task<JsonElement> ReceiveAsync(CancellationToken ct)
    {
        _buffer.ResetWrittenCount();
        while (true)
        {
            var r = await _socket.ReceiveAsync(_buffer.GetMemory(4096), ct);
            if (r.MessageType == WebSocketMessageType.Close)
                throw new WebSocketException($"closed by the broker: {(int?)_socket.CloseStatus} {_socket.CloseStatusDescription}");
            _buffer.Advance(r.Count);
            if (r.EndOfMessage) break;
        }
        using var doc = JsonDocument.Parse(_buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    public static string Publish(string id, string topic, byte[] data) =>
        $$"""{"type":"publish","id":"{{id}}","topic":"{{topic}}","data":{{Encoding.UTF8.GetString(data)}}}""";

    public ValueTask DisposeAsync()
    {
        _socket.Abort();
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>One answer to a publish with an id the soak chose.</summary>
/// <param name="Code">Null for an ack, else the error code.</param>
public sealed record Answer(double At, string Id, string? Code, string? Message, string? Pos)
{
    public bool IsAck => Code is null;

    /// <summary>
    /// <c>unavailable</c> that does not say "nothing was written": the outcome is not known and the
    /// resend with the same id settles it (docs/protocol.md, "Retries and node loss"). Only an
    /// <c>unavailable</c> that says "nothing was written" claims that nothing was stored; the other
    /// refusals (<c>conflict</c>, <c>rate_limited</c>, …) always claim it.
    /// </summary>
    public bool IsUncertain => Code == "unavailable" &&
        Message?.Contains("nothing was written", StringComparison.OrdinalIgnoreCase) != true;

    public static Answer? From(JsonElement f)
    {
        var type = f.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type is not ("ack" or "error") || !f.TryGetProperty("id", out var idProp) || idProp.GetString() is not { } id) return null;
        string? Str(string name) => f.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return type == "ack" ? new Answer(Clock.Now, id, null, null, Str("pos")) : new Answer(Clock.Now, id, Str("code"), Str("message"), null);
    }
}
