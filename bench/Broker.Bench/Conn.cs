using System.Buffers.Text;
using System.Net.WebSockets;
using System.Text.Json;

namespace Broker.Bench;

public enum FrameType { Other, Message, Ack, Error, Subscribed }

/// <summary>The few fields of a server frame the bench looks at.</summary>
/// <param name="Id">The request id echoed by the server, when it is a number (the bench only sends numeric ids); else -1.</param>
/// <param name="Seq">For messages: <c>data.s</c>, the publisher's sequence number.</param>
/// <param name="SentAt">For messages: <c>data.t</c>, the publisher's Stopwatch timestamp at send.</param>
/// <param name="Key">For messages: N when the message's <c>key</c> is the bench's <c>"kN"</c>; -1 without key; -2 for any other key.</param>
public readonly record struct Frame(FrameType Type, long Id, long Seq, long SentAt, string? Code, long Key = -1)
{
    public static Frame Parse(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json);
        FrameType type = FrameType.Other;
        long id = -1, seq = -1, sentAt = 0, key = -1;
        string? code = null;
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
                        : FrameType.Other;
                }
                else if (r.ValueTextEquals("id"u8))
                {
                    r.Read();
                    if (!Utf8Parser.TryParse(r.ValueSpan, out id, out var used) || used != r.ValueSpan.Length) id = -1;
                }
                else if (r.ValueTextEquals("code"u8))
                {
                    r.Read();
                    code = r.GetString();
                }
                else if (r.ValueTextEquals("key"u8))
                {
                    // "kN" (no escapes possible), parsed without allocating.
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
                else
                {
                    r.Read();
                    r.Skip();
                }
            }
            else if (r.CurrentDepth == 2)
            {
                if (r.ValueTextEquals("s"u8)) { r.Read(); seq = r.GetInt64(); }
                else if (r.ValueTextEquals("t"u8)) { r.Read(); sentAt = r.GetInt64(); }
                else { r.Read(); r.Skip(); }
            }
        }
        return new Frame(type, id, seq, sentAt, code, key);
    }
}

/// <summary>
/// One client WebSocket: a receive loop that hands every frame to a callback (on the loop's
/// thread, one at a time), and sends from one caller at a time.
/// </summary>
public sealed class Conn
{
    private readonly ClientWebSocket _ws = new();
    private byte[] _buffer = new byte[8192];
    private Task<string?> _receiving = Task.FromResult<string?>(null);
    private volatile bool _closing;

    public static async Task<Conn> OpenAsync(Uri uri, CancellationToken ct)
    {
        var c = new Conn();
        await c._ws.ConnectAsync(uri, ct);
        return c;
    }

    /// <summary>Completes when the receive loop ends: null when the bench closed the socket, else why it ended.</summary>
    public Task<string?> Ended => _receiving;

    public void Start(Action<Frame> onFrame) => _receiving = Task.Run(() => ReceiveLoop(onFrame));

    public ValueTask SendAsync(ReadOnlyMemory<byte> json, CancellationToken ct) =>
        _ws.SendAsync(json, WebSocketMessageType.Text, true, ct);

    private async Task<string?> ReceiveLoop(Action<Frame> onFrame)
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
                onFrame(Frame.Parse(_buffer.AsSpan(0, count)));
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            return _closing ? null : $"socket failed: {e.Message}";
        }
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
