using System.Net;
using System.Net.Sockets;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// A loopback TCP proxy in front of a server (a database, a Kafka broker) that a test can break and
/// restore: <see cref="Break"/> resets every open connection and resets new ones at once (as a
/// stopped server or a broken network would), <see cref="Restore"/> lets connections through again.
/// Shared with the chaos soak (bench/soak links this file), whose database cut it is.
/// </summary>
internal sealed class TcpProxy : IDisposable
{
    private readonly TcpListener _listener;
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly List<(TcpClient Client, TcpClient Server)> _open = [];
    private volatile bool _broken;

    public TcpProxy(string targetHost, int targetPort)
    {
        _targetHost = targetHost;
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptLoop();
    }

    /// <summary>The loopback port clients connect to instead of the server's.</summary>
    public int Port { get; }

    /// <summary>Connections made through the proxy so far.</summary>
    public int Accepted { get; private set; }

    /// <summary>Resets every open connection; new ones are reset as they come, until <see cref="Restore"/>.</summary>
    public void Break()
    {
        List<(TcpClient, TcpClient)> open;
        lock (_gate)
        {
            _broken = true;
            open = [.. _open];
            _open.Clear();
        }
        foreach (var (client, server) in open)
        {
            Reset(client);
            Reset(server);
        }
    }

    public void Restore() => _broken = false;

    private static void Reset(TcpClient c)
    {
        try
        {
            if (c.Client is { } socket) socket.LingerState = new LingerOption(true, 0); // RST, not FIN
            c.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            if (_broken)
            {
                Reset(client);
                continue;
            }
            _ = Serve(client);
        }
    }

    private async Task Serve(TcpClient client)
    {
        var server = new TcpClient();
        try
        {
            await server.ConnectAsync(_targetHost, _targetPort, _stop.Token);
        }
        catch (Exception)
        {
            Reset(client);
            server.Dispose();
            return;
        }
        lock (_gate)
        {
            // Broken while this connection was being made: Break did not see it.
            if (_broken)
            {
                Reset(client);
                Reset(server);
                return;
            }
            _open.Add((client, server));
            Accepted++;
        }
        using (client)
        using (server)
        {
            try
            {
                var a = client.GetStream().CopyToAsync(server.GetStream(), _stop.Token);
                var b = server.GetStream().CopyToAsync(client.GetStream(), _stop.Token);
                await Task.WhenAny(a, b);
            }
            catch (Exception)
            {
                // one side went away
            }
        }
        lock (_gate) _open.Remove((client, server));
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        Break();
    }
}
