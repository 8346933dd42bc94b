using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Threading.Channels;

namespace Broker.Client.Internal;

/// <summary>An attempt to connect failed before a WebSocket was open.</summary>
internal sealed class ConnectFailedException(BrokerCloseInfo info, bool terminal, TimeSpan? retryAfter, Exception? inner)
    : BrokerException(info.ToString(), inner)
{
    public BrokerCloseInfo Info { get; } = info;

    /// <summary>Retrying cannot help (the broker refused the upgrade with 400, 401, 403 or 404).</summary>
    public bool Terminal { get; } = terminal;

    /// <summary>The broker's <c>Retry-After</c> (503 while draining or at a connection cap).</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}

/// <summary>A request was sent on a connection that ended before its reply.</summary>
internal sealed class ConnectionLostException() : BrokerException("the connection ended before the reply arrived");

/// <summary>
/// One WebSocket connection: a send loop that is the socket's only sender (a WebSocket allows one
/// send at a time) fed by an unbounded queue, and a receive loop that reads whole frames, parses
/// them (an object, or an array of objects when batching) and hands each object to the client in
/// order. The receive loop awaits the client, so a full subscription buffer stops the reading.
/// </summary>
internal sealed class WebSocketConnection
{
    /// <summary>A frame from the broker larger than this is treated as a broken connection.</summary>
    private const int MaxInboundFrameBytes = 16 * 1024 * 1024;

    private static long s_generations;

    private readonly ClientWebSocket _socket;
    private readonly Channel<byte[]> _outgoing = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource<BrokerCloseInfo> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _sending = Task.CompletedTask;

    private WebSocketConnection(ClientWebSocket socket, Uri endpoint)
    {
        _socket = socket;
        Endpoint = endpoint;
    }

    /// <summary>Distinguishes connections (a publish remembers the connection it was last sent on).</summary>
    public long Generation { get; } = Interlocked.Increment(ref s_generations);

    public Uri Endpoint { get; }

    /// <summary>Completes once the receive loop ended, with the close code and reason (1006 when the connection just dropped).</summary>
    public Task<BrokerCloseInfo> Ended => _ended.Task;

    public static async Task<WebSocketConnection> ConnectAsync(Uri uri, Uri endpoint, BrokerClientOptions options, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = options.KeepAliveInterval;
        socket.Options.KeepAliveTimeout = options.KeepAliveTimeout;
        socket.Options.CollectHttpResponseDetails = true; // the status of a refused upgrade decides whether to retry
        options.ConfigureWebSocket?.Invoke(socket.Options);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(uri, timeout.Token).ConfigureAwait(false);
            return new WebSocketConnection(socket, endpoint);
        }
        catch (WebSocketException e)
        {
            var status = (int)socket.HttpStatusCode;
            var retryAfter = RetryAfter(socket.HttpResponseHeaders);
            socket.Dispose();
            if (status == 0) throw new ConnectFailedException(new BrokerCloseInfo(null, e.Message), false, null, e);
            var terminal = status is (int)HttpStatusCode.BadRequest or (int)HttpStatusCode.Unauthorized
                or (int)HttpStatusCode.Forbidden or (int)HttpStatusCode.NotFound;
            throw new ConnectFailedException(new BrokerCloseInfo(null, $"the WebSocket upgrade was refused with HTTP {status}", status), terminal, retryAfter, e);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            socket.Dispose();
            throw new ConnectFailedException(new BrokerCloseInfo(null, $"no WebSocket handshake within {options.ConnectTimeout}"), false, null, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static TimeSpan? RetryAfter(IReadOnlyDictionary<string, IEnumerable<string>>? headers)
    {
        if (headers is null) return null;
        foreach (var (name, values) in headers)
        {
            if (!name.Equals("Retry-After", StringComparison.OrdinalIgnoreCase)) continue;
            foreach (var v in values)
                if (int.TryParse(v, out var seconds) && seconds >= 0) return TimeSpan.FromSeconds(seconds);
        }
        return null;
    }

    /// <summary>Starts both loops; <paramref name="onFrame"/> is called for every server object, one at a time, in order.</summary>
    public void Start(Func<WebSocketConnection, ServerFrame, ValueTask> onFrame)
    {
        _sending = Task.Run(SendLoop);
        _ = Task.Run(() => ReceiveLoop(onFrame));
    }

    /// <summary>Queues a frame; false when the connection no longer sends.</summary>
    public bool Send(byte[] frame) => _outgoing.Writer.TryWrite(frame);

    /// <summary>Sends what is queued, then a close frame (1000); waits for the broker's close at most <paramref name="timeout"/>, then aborts.</summary>
    public async Task CloseAsync(TimeSpan timeout)
    {
        _outgoing.Writer.TryComplete();
        try
        {
            await Ended.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Abort();
        }
    }

    public void Abort()
    {
        _outgoing.Writer.TryComplete();
        _socket.Abort();
    }

    private async Task SendLoop()
    {
        try
        {
            await foreach (var frame in _outgoing.Reader.ReadAllAsync().ConfigureAwait(false))
                await _socket.SendAsync(frame, WebSocketMessageType.Text, true, CancellationToken.None).ConfigureAwait(false);
            // Completed by CloseAsync: the queue is sent; say goodbye.
            if (_socket.State == WebSocketState.Open)
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "client closing", CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            _socket.Abort(); // the receive loop ends and reports the connection as dropped
        }
    }

    private async Task ReceiveLoop(Func<WebSocketConnection, ServerFrame, ValueTask> onFrame)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var frames = new List<ServerFrame>();
        BrokerCloseInfo info;
        try
        {
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (count == buffer.Length)
                    {
                        if (buffer.Length >= MaxInboundFrameBytes) throw new WebSocketException($"a frame from the broker is larger than {MaxInboundFrameBytes} bytes");
                        var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                        buffer.AsSpan(0, count).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    r = await _socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None).ConfigureAwait(false);
                    count += r.Count;
                } while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    info = new BrokerCloseInfo((int?)_socket.CloseStatus ?? BrokerCloseCodes.Abnormal, _socket.CloseStatusDescription ?? "");
                    // Answer the close handshake if the broker started it (best effort).
                    if (_socket.State == WebSocketState.CloseReceived)
                    {
                        _outgoing.Writer.TryComplete();
                        await _sending.ConfigureAwait(false);
                        if (_socket.State == WebSocketState.CloseReceived)
                            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None).ConfigureAwait(false);
                    }
                    break;
                }
                if (r.MessageType != WebSocketMessageType.Text) continue;
                frames.Clear();
                if (!ServerFrame.TryParse(buffer.AsSpan(0, count), frames)) continue; // not a frame of the protocol: ignored
                foreach (var f in frames) await onFrame(this, f).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            info = new BrokerCloseInfo(BrokerCloseCodes.Abnormal, e.Message);
        }
        catch (Exception e)
        {
            // A bug in frame handling: end this connection rather than the process; the client reconnects.
            info = new BrokerCloseInfo(BrokerCloseCodes.Abnormal, "frame handling failed: " + e.Message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        _outgoing.Writer.TryComplete();
        _socket.Abort();
        _socket.Dispose();
        _ended.TrySetResult(info);
    }
}
