using System.Net;
using System.Net.Sockets;

namespace Broker.Server.Configuration;

/// <summary>
/// Checks, before anything starts, that the ports this node listens on are free: a port in use would
/// otherwise fail late (Kestrel binds after the actor system started; the embedded log and Akka.Remote
/// fail with a bare socket error). The message names the port, the setting and what to do.
/// </summary>
public static class PortCheck
{
    /// <summary>One listener of the node: what it is, where it listens, and the advice when the port is taken.</summary>
    public sealed record Listener(string What, IPAddress Address, int Port, string Key, string Advice);

    /// <summary>The listeners of a node with the settings that move them (ports 0 are free by definition and not listed).</summary>
    public static IEnumerable<Listener> ListenersOf(NodeSettings s)
    {
        yield return new Listener("the HTTP port (WebSockets, dashboard, health)", s.Http.Address, s.Http.Port, "broker.http.port",
            "is another broker running? set BROKER_HTTP_PORT to a free port (0 = any free port)");
        yield return new Listener("the admin API", s.Admin.Address, s.Admin.Port, "broker.admin.port",
            "is another broker running? set BROKER_ADMIN_PORT to a free port (0 = any free port)");
        if (s.EmbeddedLog.Enabled)
            yield return new Listener("the embedded Kafka-protocol log", s.EmbeddedLog.Address, s.EmbeddedLog.Port, "broker.kafka.embedded.port",
                "is a Kafka already running? set BROKER_KAFKA_BOOTSTRAP to use it, or BROKER_EMBEDDED_KAFKA_PORT to move the embedded log");
        if (ResolveOrNull(s.Cluster.Hostname) is { } remoting)
            yield return new Listener("Akka.Remote (cluster)", remoting, s.Cluster.Port, "broker.cluster.port",
                "is another node running on this machine? set BROKER_CLUSTER_PORT to a free port");
    }

    /// <summary>Throws <see cref="StartupException"/> for the first listener whose port is in use.</summary>
    public static void EnsureFree(IEnumerable<Listener> listeners)
    {
        foreach (var l in listeners)
        {
            if (l.Port == 0) continue;
            if (InUse(l.Address, l.Port) is { } problem) throw new StartupException(Message(l, problem));
        }
    }

    /// <summary>The one-line report of a listener that cannot bind its port.</summary>
    public static string Message(Listener l, string problem) =>
        $"cannot listen on {new IPEndPoint(l.Address, l.Port)} for {l.What} ({l.Key}): {problem}; {l.Advice}";

    private static string? InUse(IPAddress address, int port)
    {
        try
        {
            var probe = new TcpListener(address, port);
            probe.Start();
            probe.Stop();
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return "the port is in use";
        }
        catch (SocketException e)
        {
            return e.Message;
        }
    }

    private static IPAddress? ResolveOrNull(string host)
    {
        if (IPAddress.TryParse(host, out var ip)) return ip;
        try
        {
            return Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork);
        }
        catch (SocketException)
        {
            return null; // Akka.Remote reports it
        }
    }
}
