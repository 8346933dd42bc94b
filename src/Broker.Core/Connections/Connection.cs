using System.Net.WebSockets;
using Broker.Core.Sessions;
using Broker.Protocol;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Connections;

/// <summary>What a client asked for on the upgrade request.</summary>
/// <param name="ClientId">The client's identity for de-duplicating retried publishes across reconnects (<c>?client=</c>); null: the connection is its own identity.</param>
/// <param name="SessionId">The durable session (<c>?session=</c>), already validated; null for none.</param>
/// <param name="Batch">The client accepts frames that hold a JSON array of server objects (<c>?batch=1</c>).</param>
/// <param name="Security">Who the client is, its auth flow, permissions and rates (null: no checks, as in unit tests).</param>
public sealed record ConnectionOptions(string? ClientId = null, string? SessionId = null, bool Batch = false, Security.ConnectionSecurity? Security = null);

/// <summary>
/// One WebSocket connection:
/// <code>
/// socket ─(read on demand)→ decode/validate ─→ ConnectionRequests (one request at a time; publishes ≤ N in flight) ─┐
/// node feeds / catch-up readers ────────────────────────────────────────────────────────────────────────────────→ ├→ OutboundQueue ─→ FrameWriter ─→ socket
/// </code>
/// A message is read only when the previous request has been handed over, a publish slot is free
/// and the outbound budget has room, so a flooding client is slowed by TCP, not buffered. Live
/// messages never wait: a spent outbound budget closes the connection with 1013 slow_consumer.
/// Closing gives the peer <c>close-timeout</c> to finish the handshake, then aborts the socket.
/// </summary>
public sealed class Connection
{
    private readonly WebSocket _socket;
    private readonly Action? _abortTransport;
    private readonly NodeServices _node;
    private readonly OutboundQueue _outbound;
    private readonly FrameReader _reader;
    private readonly ConnectionRequests _requests;

    /// <param name="coalescing">The stream under <paramref name="socket"/> that lets the writer flush many frames at once (null: none).</param>
    /// <param name="abortTransport">
    /// Aborts the transport under the WebSocket, called after the WebSocket itself is aborted when
    /// the connection is torn down (a write blocked on a peer that does not read must fail). Null:
    /// aborting the WebSocket is enough.
    /// </param>
    public Connection(WebSocket socket, WriteCoalescingStream? coalescing, NodeServices node, ILogger logger, ConnectionOptions options, Action? abortTransport = null)
    {
        _socket = socket;
        _abortTransport = abortTransport;
        _node = node;
        var settings = node.Settings;
        _outbound = new OutboundQueue(settings.OutboundBufferFrames, settings.OutboundBufferBytes);
        _ = new FrameWriter(socket, coalescing, _outbound, options.Batch ? settings.BatchMaxBytes : 0);
        _reader = new FrameReader(socket, settings.MaxFrameBytes);
        // The session id is scoped to the token's subject, known only once the client authenticated.
        Func<SessionLink>? session = options.SessionId is null ? null
            : () => new SessionLink(options.Security?.Scope(options.SessionId) ?? options.SessionId, node.Sessions ?? throw new InvalidOperationException("durable sessions need the session region"),
                node.System!, node.SessionSettings!, _outbound.RequestClose);
        _requests = new ConnectionRequests(node, _outbound, logger, options.ClientId, session, options.Security);
    }

    public async Task RunAsync()
    {
        var id = _node.Registry.Add(_outbound);
        _node.Metrics.ConnectionAccepted();
        var reading = Task.CompletedTask;
        try
        {
            // The session's restored subscriptions are answered before any request is read.
            await _requests.RestoreSessionAsync().ConfigureAwait(false);
            reading = ReadLoopAsync();
            var close = await _outbound.Closed.ConfigureAwait(false);
            await CloseAsync(close, reading).ConfigureAwait(false);
        }
        finally
        {
            _node.Registry.Remove(id);
            await _requests.StopAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The close, once requested: the peer has <c>close-timeout</c> to finish the handshake, then the
    /// connection is aborted. A method of its own, so that what it keeps is allocated at close, not
    /// held by every open connection's <see cref="RunAsync"/>.
    /// </summary>
    private async Task CloseAsync(CloseRequest close, Task reading)
    {
        _requests.ReleaseWaiters();
        if (close.Code == CloseCodes.TryAgainLater) _node.Metrics.SlowConsumerClosed();
        using var deadline = new CancellationTokenSource(_node.Settings.CloseTimeout);
        await using var abort = deadline.Token.Register(static c => ((Connection)c!).Abort(), this);
        await _outbound.DrainStopped().ConfigureAwait(false);
        await SendCloseAsync(close).ConfigureAwait(false);
        await reading.ConfigureAwait(false);
    }

    /// <summary>
    /// Reads and hands over one request at a time until the peer closes (or the connection is
    /// closing: then it reads on, for the peer's close frame, but acts on nothing). However reading
    /// ends, the connection closes (the first close request wins). One async method that awaits the
    /// zero-byte wait itself, so an idle connection's read holds one state machine, not three.
    /// </summary>
    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                if (_outbound.CloseRequested is null)
                {
                    // Backpressure: no request is read while the client is not reading its replies, or
                    // while as many publishes as allowed wait for their acks.
                    await _outbound.WaitForRoomAsync().ConfigureAwait(false);
                    await _requests.WaitForPublishSlotAsync().ConfigureAwait(false);
                }
                ValueWebSocketReceiveResult next;
                try
                {
                    next = await _reader.WaitAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (FrameReader.IsPeerGone(e))
                {
                    next = FrameReader.PeerGone;
                }
                var frame = await _reader.ReadAsync(next).ConfigureAwait(false);
                switch (frame.Kind)
                {
                    case FrameKind.Closed:
                        _outbound.RequestClose(CloseCodes.Normal, "");
                        return;
                    case FrameKind.TooBig:
                        _outbound.RequestClose(CloseCodes.TooBig, $"frame larger than {_node.Settings.MaxFrameBytes} bytes");
                        _node.Metrics.BadInput("frame_too_big");
                        await _reader.DrainUntilCloseAsync().ConfigureAwait(false);
                        return;
                }
                if (_outbound.CloseRequested is not null)
                {
                    FrameReader.Return(frame);
                    continue;
                }
                await _requests.HandleAsync(Decode(frame)).ConfigureAwait(false);
            }
        }
        finally
        {
            _outbound.RequestClose(CloseCodes.InternalError, "internal error");
        }
    }

    /// <summary>Decodes a data frame into a request (or the error to answer) and returns its buffer to the pool.</summary>
    private DecodeResult Decode(InboundFrame frame)
    {
        try
        {
            return frame.Kind == FrameKind.Binary
                ? DecodeResult.Fail(null, ErrorCodes.BadRequest, "binary frames are not supported: send one JSON object per text frame")
                : frame.Count == 0
                    ? DecodeResult.Fail(null, ErrorCodes.BadRequest, "empty frame")
                    : RequestDecoder.Decode(frame.Span, _node.Settings.Limits);
        }
        finally
        {
            FrameReader.Return(frame);
        }
    }

    /// <summary>Tears the connection down at once: the WebSocket, then the transport under it.</summary>
    private void Abort()
    {
        _socket.Abort();
        _abortTransport?.Invoke();
    }

    private async Task SendCloseAsync(CloseRequest close)
    {
        if (_socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        try
        {
            await _socket.CloseOutputAsync((WebSocketCloseStatus)close.Code, close.Reason, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
    }
}
