using System.Diagnostics;
using System.Globalization;

namespace Broker.Bench;

/// <summary>
/// Reads the server process's CPU time (/proc/PID/stat utime + stime) and resident memory
/// (/proc/PID/status VmRSS), the load tool's own CPU time, and the bytes the bench's sockets read
/// (what the server wrote to them; /proc/PID/io wchar does not count socket sends). Without
/// <c>--server-pid</c> the server figures are absent.
/// </summary>
public sealed class Probe(int pid)
{
    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux

    public bool HasServer => pid > 0;

    public readonly record struct Snapshot(long At, double ServerCpu, double ToolCpu, long WireBytes);

    public readonly record struct Window(double Seconds, double ServerCores, double ToolCores, long WireBytes)
    {
        /// <summary>Cores used over the window, and (with <paramref name="per"/> &gt; 0) CPU µs per unit of work: less sensitive to other work on the machine than cores.</summary>
        public void Report(Result r, bool hasServer, long per = 0, string unit = "delivery", string suffix = "")
        {
            if (hasServer) r.Metric($"server CPU cores{suffix}", ServerCores);
            r.Metric($"tool CPU cores{suffix}", ToolCores);
            if (per <= 0) return;
            if (hasServer) r.Metric($"server CPU µs per {unit}{suffix}", ServerCores * Seconds * 1e6 / per);
            r.Metric($"tool CPU µs per {unit}{suffix}", ToolCores * Seconds * 1e6 / per);
        }
    }

    public Snapshot Take() => new(Stopwatch.GetTimestamp(), ServerCpuSeconds(), Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds, Endpoint.WireBytesReceived);

    public static Window Between(Snapshot a, Snapshot b)
    {
        var seconds = Math.Max(1e-6, Stopwatch.GetElapsedTime(a.At, b.At).TotalSeconds);
        return new Window(seconds, (b.ServerCpu - a.ServerCpu) / seconds, (b.ToolCpu - a.ToolCpu) / seconds, b.WireBytes - a.WireBytes);
    }

    public double ServerCpuSeconds()
    {
        if (pid <= 0) return 0;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after "(comm)": state is field 3, utime 14, stime 15.
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) / ClockTicksPerSecond;
        }
        catch (IOException) { return 0; }
    }

    /// <summary>Resident set size in bytes (0 without a server).</summary>
    public long ServerRss() => StatusField($"/proc/{pid}/status", "VmRSS:") * 1024;

    private long StatusField(string path, string name)
    {
        if (pid <= 0) return 0;
        try
        {
            foreach (var line in File.ReadLines(path))
                if (line.StartsWith(name, StringComparison.Ordinal))
                    return long.Parse(line[name.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }
}
