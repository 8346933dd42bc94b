using System.Diagnostics;

namespace Broker.Soak;

/// <summary>The run's one clock: seconds since the soak started (monotonic), and the UTC time of the start.</summary>
public static class Clock
{
    private static readonly Stopwatch Watch = Stopwatch.StartNew();

    public static readonly DateTime StartedUtc = DateTime.UtcNow;

    /// <summary>Seconds since the start.</summary>
    public static double Now => Watch.Elapsed.TotalSeconds;

    /// <summary>A line for the console and the fault log: "[  12.3s] text".</summary>
    public static void Log(string text) => Console.Error.WriteLine($"[{Now,7:0.0}s] {text}");
}
