using System.Net;
using System.Net.Sockets;

namespace Broker.Soak.Cluster;

/// <summary>
/// Free loopback ports for the soak's processes, below the kernel's ephemeral range (32768 and up
/// on Linux) so that no outgoing connection takes one while a node is down and about to restart on it.
/// </summary>
public static class Ports
{
    /// <summary><paramref name="count"/> distinct free ports.</summary>
    public static int[] Free(int count)
    {
        var ports = new List<int>();
        while (ports.Count < count)
        {
            var candidate = Random.Shared.Next(20_000, 32_000);
            if (!ports.Contains(candidate) && IsFree(candidate)) ports.Add(candidate);
        }
        return [.. ports];
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var l = new TcpListener(IPAddress.Loopback, port);
            l.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
