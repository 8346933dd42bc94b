namespace Broker.Soak.Faults;

/// <summary>One fault as it happened (times on the soak clock, seconds).</summary>
public sealed class FaultEvent(int number, string kind, string target, double start)
{
    public int Number { get; } = number;
    public string Kind { get; } = kind;
    public string Target { get; } = target;
    public double Start { get; } = start;

    /// <summary>When the fault was over (the node ready again, the log resumed, the episode done).</summary>
    public double? Healed { get; set; }

    public string Detail { get; set; } = "";

    /// <summary>For faults of the cluster: when every continuous publisher had had an ack again after it was over.</summary>
    public double? Recovered { get; set; }

    /// <summary>For faults of the cluster: the longest time a publisher waited for its next ack while this fault was on.</summary>
    public double? Outage { get; set; }

    /// <summary>The publisher that waited longest.</summary>
    public string? OutageOf { get; set; }

    public bool IsClusterFault => Kind is FaultKinds.Kill9 or FaultKinds.Term or FaultKinds.Drain or FaultKinds.LogPause or FaultKinds.DbStop or FaultKinds.DbCut or FaultKinds.Exited;
}

public static class FaultKinds
{
    public const string Kill9 = "kill -9 + restart";
    public const string Term = "SIGTERM + restart";
    public const string Drain = "drain + restart";
    public const string LogPause = "log paused (SIGSTOP)";
    public const string DbStop = "database stopped";
    public const string DbCut = "database cut";
    public const string Abort = "client aborted mid-frame";
    public const string SlowReader = "slow reader";
    public const string Restart = "subscriber restart";
    /// <summary>Not injected: a node's process exited by itself (downed by the split-brain resolver, or crashed) and the soak started it again.</summary>
    public const string Exited = "node exited by itself + restart";
}

/// <summary>Every fault with timestamps, printed as it happens and kept for the report.</summary>
public sealed class FaultLog
{
    private readonly Lock _gate = new();
    private readonly List<FaultEvent> _events = [];

    public FaultEvent Begin(string kind, string target, string detail = "")
    {
        FaultEvent e;
        lock (_gate)
        {
            e = new FaultEvent(_events.Count + 1, kind, target, Clock.Now) { Detail = detail };
            _events.Add(e);
        }
        Clock.Log($"fault #{e.Number}: {kind} — {target}{(detail.Length > 0 ? ": " + detail : "")}");
        return e;
    }

    public void Healed(FaultEvent e, string? more = null)
    {
        e.Healed = Clock.Now;
        if (more is { Length: > 0 }) e.Detail = e.Detail.Length > 0 ? e.Detail + "; " + more : more;
        Clock.Log($"fault #{e.Number}: {e.Kind} over after {e.Healed - e.Start:0.0}s{(more is { Length: > 0 } ? " — " + more : "")}");
    }

    public void Note(FaultEvent e, string note)
    {
        lock (_gate) e.Detail = e.Detail.Length > 0 ? e.Detail + "; " + note : note;
        Clock.Log($"fault #{e.Number}: {note}");
    }

    public List<FaultEvent> Events
    {
        get { lock (_gate) return [.. _events]; }
    }
}
