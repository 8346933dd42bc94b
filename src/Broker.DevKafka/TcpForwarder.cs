using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Broker.DevKafka;

/// <summary>
/// What a <see cref="TcpForwarder"/> does with the Metadata requests and responses it carries.
/// </summary>
/// <param name="BeforeRequest">Called with each Metadata request (without its size prefix) before the mock receives it.</param>
/// <param name="StaysOnForwarders">
/// Given a connection's <c>client.id</c>: whether the Metadata responses it reads name the forwarders
/// (<paramref name="ForwarderOf"/>) instead of the mock's own listeners, so that the client keeps
/// talking through the forwarders. Null: responses pass through as the mock wrote them.
/// </param>
/// <param name="ForwarderOf">Host and port of the forwarder of a mock broker id.</param>
internal sealed record MetadataHooks(
    Action<ReadOnlyMemory<byte>>? BeforeRequest,
    Func<string?, bool>? StaysOnForwarders,
    Func<int, (string Host, int Port)?> ForwarderOf);

/// <summary>
/// Listens on a chosen endpoint and pipes every accepted connection to a target port on loopback.
/// Needed because librdkafka's mock brokers always bind an ephemeral loopback port. Requests from
/// clients are Kafka protocol frames: a Metadata request (which makes the mock create unknown
/// topics) is handed to <see cref="MetadataHooks.BeforeRequest"/> before it is forwarded, and for
/// the clients that <see cref="MetadataHooks.StaysOnForwarders"/> picks, the broker list of the
/// Metadata responses is rewritten to name the forwarders. Every other byte passes through as it
/// arrives.
/// </summary>
internal sealed class TcpForwarder : IDisposable
{
    /// <summary>Largest request held back for inspection (larger ones pass through uninspected).</summary>
    private const int MaxInspected = 64 * 1024;

    /// <summary>Largest Metadata response rewritten (larger ones pass through as they are).</summary>
    private const int MaxRewritten = 16 * 1024 * 1024;

    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly MetadataHooks? _metadata;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private readonly Task _acceptLoop;
    private int _disposed;

    /// <param name="metadata">What to do with Metadata; null: every byte passes through untouched.</param>
    public TcpForwarder(IPAddress address, int port, int targetPort, MetadataHooks? metadata = null)
    {
        _targetPort = targetPort;
        _metadata = metadata;
        _listener = new TcpListener(address, port);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The port actually bound (differs from the requested one when that was 0).</summary>
    public int Port { get; }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue; // transient accept failure (e.g. the peer reset before accept)
            }
            _ = PipeAsync(client);
        }
    }

    private async Task PipeAsync(Socket client)
    {
        var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _open.TryAdd(client, 0);
        _open.TryAdd(upstream, 0);
        try
        {
            client.NoDelay = true;
            upstream.NoDelay = true;
            // Refused while the mock broker is "down": the client just sees its connection closed.
            await upstream.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            using var a = new NetworkStream(client, ownsSocket: false);
            using var b = new NetworkStream(upstream, ownsSocket: false);
            // Whichever direction ends first (EOF or error) tears down both sockets.
            Task requests, responses;
            if (_metadata is null)
            {
                requests = a.CopyToAsync(b, _stop.Token);
                responses = b.CopyToAsync(a, _stop.Token);
            }
            else
            {
                var connection = new ClientConnection();
                requests = ForwardRequestsAsync(a, b, connection, _metadata, _stop.Token);
                responses = _metadata.StaysOnForwarders is null
                    ? b.CopyToAsync(a, _stop.Token)
                    : ForwardResponsesAsync(b, a, connection, _metadata, _stop.Token);
            }
            await Task.WhenAny(requests, responses);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            Close(client);
            Close(upstream);
        }
    }

    /// <summary>One client connection: whose it is, and the Metadata requests whose responses are to be rewritten.</summary>
    private sealed class ClientConnection
    {
        /// <summary>Null until the first request was read.</summary>
        public bool? StaysOnForwarders;

        /// <summary>Correlation id → request version of the Metadata requests sent and not yet answered.</summary>
        public readonly ConcurrentDictionary<int, short> Pending = new();
    }

    /// <summary>
    /// Copies Kafka requests (int32 size, then the request: int16 API key, int16 version, int32
    /// correlation id, nullable string client id, …) from <paramref name="from"/> to <paramref name="to"/>.
    /// The first request (for the client id) and every Metadata request are held until whole and
    /// shown to the hooks first; other requests stream through.
    /// </summary>
    private static async Task ForwardRequestsAsync(Stream from, Stream to, ClientConnection connection, MetadataHooks hooks, CancellationToken ct)
    {
        var buffer = new byte[MaxInspected + 4];
        int start = 0, end = 0;
        long passThrough = 0; // bytes of the current request still to forward uninspected
        while (true)
        {
            if (passThrough > 0 && end > start)
            {
                var n = (int)Math.Min(passThrough, end - start);
                await to.WriteAsync(buffer.AsMemory(start, n), ct);
                start += n;
                passThrough -= n;
                continue;
            }
            if (passThrough == 0 && end - start >= 8)
            {
                var size = BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(start));
                var apiKey = BinaryPrimitives.ReadInt16BigEndian(buffer.AsSpan(start + 4));
                var version = BinaryPrimitives.ReadInt16BigEndian(buffer.AsSpan(start + 6));
                var inspect = apiKey == MetadataRequest.ApiKey || connection.StaysOnForwarders is null;
                if (size < 8 || size > MaxInspected || !inspect)
                {
                    connection.StaysOnForwarders ??= false; // a first request not understood: left as the mock answers
                    passThrough = size < 8 ? long.MaxValue : size + 4L; // not a frame we understand: pass the rest through
                    continue;
                }
                if (end - start >= size + 4)
                {
                    var request = buffer.AsMemory(start + 4, size);
                    connection.StaysOnForwarders ??= hooks.StaysOnForwarders?.Invoke(ClientId(request.Span)) ?? false;
                    if (apiKey == MetadataRequest.ApiKey)
                    {
                        hooks.BeforeRequest?.Invoke(request);
                        // Registered before the mock can answer.
                        if (connection.StaysOnForwarders == true)
                            connection.Pending[BinaryPrimitives.ReadInt32BigEndian(request.Span[4..])] = version;
                    }
                    await to.WriteAsync(buffer.AsMemory(start, size + 4), ct);
                    start += size + 4;
                    continue;
                }
            }
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }
            var read = await from.ReadAsync(buffer.AsMemory(end), ct);
            if (read == 0) return;
            end += read;
        }
    }

    /// <summary>The client id of a request (header v1 and v2: after the correlation id, an int16-length nullable string).</summary>
    private static string? ClientId(ReadOnlySpan<byte> request)
    {
        if (request.Length < 10) return null;
        var length = BinaryPrimitives.ReadInt16BigEndian(request[8..]);
        return length < 0 || request.Length < 10 + length ? null : Encoding.UTF8.GetString(request.Slice(10, length));
    }

    /// <summary>
    /// Copies Kafka responses (int32 size, int32 correlation id, …) from the mock to the client; the
    /// answers to the Metadata requests of <paramref name="connection"/> that were registered are
    /// rewritten to name the forwarders, the rest streams through.
    /// </summary>
    private static async Task ForwardResponsesAsync(Stream from, Stream to, ClientConnection connection, MetadataHooks hooks, CancellationToken ct)
    {
        var header = new byte[8];
        var copy = new byte[64 * 1024];
        while (true)
        {
            try
            {
                await from.ReadExactlyAsync(header, ct);
            }
            catch (EndOfStreamException)
            {
                return;
            }
            var size = BinaryPrimitives.ReadInt32BigEndian(header);
            var correlationId = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
            if (size < 4)
            {
                await to.WriteAsync(header, ct); // not a frame we understand: pass the rest through
                await from.CopyToAsync(to, ct);
                return;
            }
            if (connection.Pending.TryRemove(correlationId, out var version) && size <= MaxRewritten)
            {
                var response = new byte[size];
                header.AsSpan(4).CopyTo(response);
                await from.ReadExactlyAsync(response.AsMemory(4), ct);
                var rewritten = MetadataResponse.AdvertiseForwarders(response, version, hooks.ForwarderOf) ?? response;
                var length = new byte[4];
                BinaryPrimitives.WriteInt32BigEndian(length, rewritten.Length);
                await to.WriteAsync(length, ct);
                await to.WriteAsync(rewritten, ct);
                continue;
            }
            await to.WriteAsync(header, ct);
            var left = size - 4;
            while (left > 0)
            {
                var n = await from.ReadAsync(copy.AsMemory(0, Math.Min(left, copy.Length)), ct);
                if (n == 0) return;
                await to.WriteAsync(copy.AsMemory(0, n), ct);
                left -= n;
            }
        }
    }

    private void Close(Socket s)
    {
        if (_open.TryRemove(s, out _))
            s.Dispose(); // Dispose aborts any pending I/O, which ends the other copy task.
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel(); // not disposed: late PipeAsync calls may still read its token
        _listener.Stop();
        foreach (var s in _open.Keys) Close(s);
        try { _acceptLoop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}
