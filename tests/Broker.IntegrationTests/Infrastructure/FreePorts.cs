using System.Net;
using System.Net.Sockets;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// Free loopback ports that a process keeps across restarts (a node restarted on the same ports).
/// Shared with the chaos soak (bench/soak links this file), so it stays free of test types.
/// </summary>
internal static class FreePorts
{
    /// <summary>
    /// <paramref name="count"/> bases of <paramref name="width"/> consecutive free ports each, below the
    /// kernel's ephemeral range (so that no connection made meanwhile takes one), not overlapping.
    /// </summary>
    public static int[] Ranges(int count, int width)
    {
        var bases = new List<int>();
        while (bases.Count < count)
        {
            var candidate = Random.Shared.Next(20_000, 32_000 - width);
            if (bases.Any(b => Math.Abs(b - candidate) < width)) continue;
            if (Enumerable.Range(candidate, width).All(IsFree)) bases.Add(candidate);
        }
        return [.. bases];
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
