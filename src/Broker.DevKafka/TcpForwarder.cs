using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Broker.DevKafka;

/// <summary>
/// Listens on a chosen endpoint and pipes every accepted connection, byte for byte, to a
/// target port on loopback. Needed because librdkafka's mock brokers always bind an
/// ephemeral loopback port.
/// </summary>
internal sealed class TcpForwarder : IDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private readonly Task _acceptLoop;
    private int _disposed;

    public TcpForwarder(IPAddress address, int port, int targetPort)
    {
        _targetPort = targetPort;
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
            await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
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
