using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.Soak.Check;
using Broker.Soak.Faults;

namespace Broker.Soak;

/// <summary>How one client's connections ended.</summary>
public sealed record ClientSummary(string Name, string Role, IReadOnlyDictionary<int, int> DisconnectsByCode, int Restarts);

/// <summary>Everything a run found, as a markdown report for people and JSON for the test that runs the short mode.</summary>
public sealed class SoakResult
{
    public string Run { get; set; } = "";
    public SoakOptions Options { get; set; } = null!;
    public string WorkDir { get; set; } = "";
    public string Database { get; set; } = "";
    public string? Commit { get; set; }
    public double StartupSeconds { get; set; }
    public double PhaseStart { get; set; }
    public double PhaseEnd { get; set; }
    public double TotalSeconds { get; set; }
    public int LogRecords { get; set; }
    public Checker? Checker { get; set; }
    public List<OutageRow> Outages { get; set; } = [];
    public List<FaultEvent> Faults { get; set; } = [];
    public List<NodeMemory> Memory { get; set; } = [];
    public List<ClientSummary> Clients { get; set; } = [];
    /// <summary>Why the run could not be completed (the cluster did not start, an unexpected failure).</summary>
    public string? Failure { get; set; }

    public bool Passed => Failure is null && Checker is { Passed: true };

    private static string F(double? v, string format = "0.0") => v is { } d ? d.ToString(format, CultureInfo.InvariantCulture) : "–";

    public string ToMarkdown()
    {
        var md = new StringBuilder();
        var o = Options;
        md.AppendLine($"# Chaos soak: {o.Mode} mode");
        md.AppendLine();
        md.AppendLine($"- date: {Clock.StartedUtc:yyyy-MM-dd HH:mm} UTC; commit: {Commit ?? "unknown"}; run {Run}, seed {o.Seed} (`--seed {o.Seed}` repeats the choices)");
        md.AppendLine($"- machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; load average at the end: {LoadAverage()}");
        md.AppendLine($"- cluster: 3 broker processes (Release), standalone Kafka-protocol log (Broker.DevKafka), sessions in {Database}");
        md.AppendLine($"- load: {o.Topics} single-partition topics with one publisher each, one 3-partition topic with two (keys a, b), " +
                      $"{o.Rate.ToString(CultureInfo.InvariantCulture)} msg/s per publisher (window {o.Window}), a probe publisher (its own ids, every answer kept) at the same rate on its own topic; " +
                      "on every node a plain subscriber (all topics) and a durable session (the single-partition topics)");
        md.AppendLine($"- time: cluster started in {F(StartupSeconds)} s, faults for {F(PhaseEnd - PhaseStart)} s, {F(TotalSeconds)} s in all; {LogRecords} records in the log");
        if (Failure is not null) md.AppendLine($"- **RUN FAILED: {Failure}**");
        md.AppendLine();
        if (Checker is { } c)
        {
            md.AppendLine($"## Result: {(Passed ? "every \"must be 0\" is 0" : "**FAILED**")}");
            md.AppendLine();
            md.AppendLine("| check | value | must be |");
            md.AppendLine("| --- | ---: | :---: |");
            foreach (var f in c.Figures) md.AppendLine($"| {f.Label} | {(f.Failed ? $"**{f.Value}**" : f.Value.ToString(CultureInfo.InvariantCulture))} | {(f.MustBeZero ? "0" : "")} |");
            md.AppendLine();
            var shown = c.Figures.Where(f => f.Value > 0 && f.Examples.Count > 0 && (f.MustBeZero || f.Key.StartsWith("unavailable", StringComparison.Ordinal) || f.Key == "same_message_twice")).ToList();
            if (shown.Count > 0)
            {
                md.AppendLine("First cases:");
                md.AppendLine();
                foreach (var f in shown)
                {
                    md.AppendLine($"- {f.Label}:");
                    foreach (var e in f.Examples) md.AppendLine($"  - {e}");
                }
                md.AppendLine();
            }
        }
        md.AppendLine("## Longest publish outage per fault kind");
        md.AppendLine();
        md.AppendLine("Outage: the longest time any continuous publisher waited between two acks while the fault was on (from its start to the next fault).");
        md.AppendLine();
        md.AppendLine("| fault | count | longest outage (s) | in fault # | publisher | mean of the faults' longest (s) | longest until every publisher acked again (s) |");
        md.AppendLine("| --- | ---: | ---: | ---: | --- | ---: | ---: |");
        foreach (var r in Outages)
            md.AppendLine($"| {r.Kind} | {r.Count} | {F(r.Longest)} | {(r.LongestFault > 0 ? r.LongestFault : "")} | {r.Publisher} | {F(r.Mean)} | {F(r.LongestRecovery)} |");
        md.AppendLine();
        md.AppendLine("## Memory (RSS, MiB)");
        md.AppendLine();
        md.AppendLine("Start: once the clients run, before the first fault. End: after the subscribers caught up. A restarted node's end is its last process's.");
        md.AppendLine();
        md.AppendLine("| process | start | end | max sampled | restarts |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: |");
        foreach (var m in Memory) md.AppendLine($"| {m.Name} | {F(m.Start, "0")} | {F(m.End, "0")} | {F(m.Max, "0")} | {m.Restarts} |");
        md.AppendLine();
        md.AppendLine("## Faults");
        md.AppendLine();
        var counts = Faults.GroupBy(f => f.Kind).Select(g => $"{g.Key}: {g.Count()}");
        md.AppendLine($"{string.Join("; ", counts)}. Times are seconds since the soak started ({Clock.StartedUtc:HH:mm:ss} UTC); the client aborts are counted above, not listed.");
        md.AppendLine();
        md.AppendLine("| # | at (s) | fault | target | over after (s) | all publishers acked again after (s) | longest publish outage (s) | detail |");
        md.AppendLine("| ---: | ---: | --- | --- | ---: | ---: | ---: | --- |");
        foreach (var f in Faults.Where(f => f.Kind != FaultKinds.Abort))
            md.AppendLine($"| {f.Number} | {F(f.Start)} | {f.Kind} | {f.Target} | {F(f.Healed - f.Start)} | {F(f.Recovered - f.Start)} | " +
                          $"{(f.IsClusterFault ? F(f.Outage) + (f.OutageOf is null ? "" : $" ({f.OutageOf})") : "")} | {f.Detail.Replace("|", "/")} |");
        md.AppendLine();
        md.AppendLine("## Clients: disconnects by close code");
        md.AppendLine();
        md.AppendLine("| client | role | disconnects (code × count) | restarts |");
        md.AppendLine("| --- | --- | --- | ---: |");
        foreach (var cl in Clients)
            md.AppendLine($"| {cl.Name} | {cl.Role} | {string.Join(", ", cl.DisconnectsByCode.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} × {kv.Value}"))} | {cl.Restarts} |");
        md.AppendLine();
        md.AppendLine($"Node and log output: `{WorkDir}`.");
        return md.ToString();
    }

    public string ToJson()
    {
        var json = new JsonObject
        {
            ["run"] = Run,
            ["mode"] = Options.Mode,
            ["seed"] = Options.Seed,
            ["commit"] = Commit,
            ["database"] = Database,
            ["passed"] = Passed,
            ["failure"] = Failure,
            ["startup_seconds"] = StartupSeconds,
            ["fault_seconds"] = PhaseEnd - PhaseStart,
            ["total_seconds"] = TotalSeconds,
            ["log_records"] = LogRecords,
            ["work_dir"] = WorkDir,
        };
        if (Checker is { } c)
        {
            var figures = new JsonObject();
            foreach (var f in c.Figures)
                figures[f.Key] = new JsonObject { ["value"] = f.Value, ["must_be_zero"] = f.MustBeZero, ["label"] = f.Label, ["examples"] = new JsonArray([.. f.Examples.Select(e => (JsonNode?)e)]) };
            json["figures"] = figures;
        }
        json["outages"] = new JsonArray([.. Outages.Select(r => (JsonNode?)new JsonObject
        {
            ["fault"] = r.Kind, ["count"] = r.Count, ["longest_seconds"] = r.Longest, ["fault_number"] = r.LongestFault, ["publisher"] = r.Publisher, ["mean_seconds"] = r.Mean,
            ["longest_recovery_seconds"] = r.LongestRecovery,
        })]);
        json["memory_mib"] = new JsonArray([.. Memory.Select(m => (JsonNode?)new JsonObject
        {
            ["process"] = m.Name, ["start"] = m.Start, ["end"] = m.End, ["max"] = m.Max, ["restarts"] = m.Restarts,
        })]);
        json["faults"] = new JsonArray([.. Faults.Select(f => (JsonNode?)new JsonObject
        {
            ["number"] = f.Number, ["kind"] = f.Kind, ["target"] = f.Target, ["start"] = f.Start, ["healed"] = f.Healed,
            ["recovered"] = f.Recovered, ["outage_seconds"] = f.Outage, ["outage_publisher"] = f.OutageOf, ["detail"] = f.Detail,
        })]);
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static string LoadAverage()
    {
        try { return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }
}
