using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Broker.DevKafka;

/// <summary>
/// Listens on a chosen endpoint and pipes every accepted connection, byte for byte, to a
/// target port on loopback. Needed because librdkafka's mock brokers always bind an
/// ephemeral loopback port. Requests from clients are Kafka protocol frames: a Metadata request
/// (which makes the mock create unknown topics) is handed to <c>beforeMetadata</c> before it is
/// forwarded; every other byte passes through as it arrives.
/// </summary>
internal sealed class TcpForwarder : IDisposable
{
    /// <summary>Largest Metadata request held back for inspection (larger ones pass through uninspected).</summary>
    private const int MaxInspected = 64 * 1024;

    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly Action<ReadOnlyMemory<byte>>? _beforeMetadata;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private readonly Task _acceptLoop;
    private int _disposed;

    /// <param name="beforeMetadata">Called with each Metadata request (without its size prefix) before the mock receives it.</param>
    public TcpForwarder(IPAddress address, int port, int targetPort, Action<ReadOnlyMemory<byte>>? beforeMetadata = null)
    {
        _targetPort = targetPort;
        _beforeMetadata = beforeMetadata;
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
            var requests = _beforeMetadata is null ? a.CopyToAsync(b, _stop.Token) : ForwardRequestsAsync(a, b, _beforeMetadata, _stop.Token);
            await Task.WhenAny(requests, b.CopyToAsync(a, _stop.Token));
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

    /// <summary>
    /// Copies Kafka requests (int32 size, then the request, whose first field is the int16 API key)
    /// from <paramref name="from"/> to <paramref name="to"/>; whole Metadata requests are shown to
    /// <paramref name="inspect"/> first.
    /// </summary>
    private static async Task ForwardRequestsAsync(Stream from, Stream to, Action<ReadOnlyMemory<byte>> inspect, CancellationToken ct)
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
            if (passThrough == 0 && end - start >= 6)
            {
                var size = BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(start));
                var apiKey = BinaryPrimitives.ReadInt16BigEndian(buffer.AsSpan(start + 4));
                if (size < 2 || apiKey != MetadataRequest.ApiKey || size > MaxInspected)
                {
                    passThrough = size < 2 ? long.MaxValue : size + 4L; // not a frame we understand: pass the rest through
                    continue;
                }
                if (end - start >= size + 4)
                {
                    inspect(buffer.AsMemory(start + 4, size));
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
