using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Broker.Bench;

/// <summary>
/// Turns the --json results of one run (a directory of <c>TARGET.LABEL.json</c> files plus the
/// run's <c>meta.json</c>) into bench/results/latest.md (<c>report --dir DIR</c>) or into the
/// README's performance section (<c>report --dir DIR --readme</c>): a table per scenario with a
/// column per target and, for the broker, each figure's ratio to each peer; then the issue targets.
/// </summary>
public static class Report
{
    private static readonly string[] Peers = ["ceiling", "nats"];
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>A row: the metric's name in the results, its label, and which way is better (+1 higher, -1 lower, 0 no ratio).</summary>
    private sealed record Row(string Metric, string Label, int Better);

    /// <summary>A scenario table: results labelled <c>Label</c>, broker variants under their own labels.</summary>
    private sealed record Section(string Label, string Title, string Note, Row[] Rows, (string Label, string Column)[] BrokerVariants);

    private static readonly Row Cpu = new("server CPU cores", "server CPU (cores)", -1);
    private static readonly Row ToolCpu = new("tool CPU cores", "load-tool CPU (cores)", 0);
    private static readonly Row CpuPerDelivery = new("server CPU µs per delivery", "server CPU per delivery (µs)", -1);
    private static readonly Row ToolCpuPerDelivery = new("tool CPU µs per delivery", "load-tool CPU per delivery (µs)", 0);
    private static readonly Row CpuPerPublish = new("server CPU µs per publish", "server CPU per publish (µs)", -1);

    private static readonly Section[] Sections =
    [
        new("fanout", "Fanout: 1 topic × 1,000 subscribers, 120 msg/s for 10 s",
            "Same moderate load for every target. End to end = publisher send → subscriber receive (one clock).",
            [
                new("deliveries/s", "deliveries/s", 1), new("e2e p50 ms", "end to end p50 (ms)", -1), new("e2e p99 ms", "end to end p99 (ms)", -1),
                new("all delivered", "every message delivered", 0), Cpu, CpuPerDelivery, ToolCpu, ToolCpuPerDelivery, new("publish→ack p99 ms", "publish→ack p99 (ms)", -1),
                new("wire bytes per delivery", "bytes on the wire per delivery", -1), new("frames received", "frames received", 0),
                new("array frames received", "array frames (batch)", 0),
            ],
            [("fanout-batch", "broker batch")]),
        new("fanout-max", "Fanout max rate: 1,000 subscribers, highest publish rate with every message delivered and p99 < 100 ms",
            "Search: doubling, then bisection; 5 s steps. Figures at the highest passing rate.",
            [
                new("max rate msg/s", "highest passing rate (msg/s)", 1), new("deliveries/s at max", "deliveries/s at it", 1),
                new("e2e at max p50 ms", "end to end p50 at it (ms)", -1), new("e2e at max p99 ms", "end to end p99 at it (ms)", -1),
                new("server CPU cores at max", "server CPU at it (cores)", -1), new("server CPU µs per delivery at max", "server CPU per delivery at it (µs)", -1),
                new("tool CPU cores at max", "load-tool CPU at it (cores)", 0),
                new("steps", "steps (rate ✓/✗)", 0),
            ],
            [("fanout-max-batch", "broker batch")]),
        new("overload", "Fanout overload: 1,000 subscribers at 2,000 msg/s for 5 s",
            "More than any target delivers: deliveries/s is the ceiling of each. Losses (slow-consumer closes) are reported, not errors.",
            [
                new("deliveries/s", "deliveries/s", 1), new("delivered fraction", "delivered fraction", 1), new("e2e p50 ms", "end to end p50 (ms)", -1),
                new("e2e p99 ms", "end to end p99 (ms)", -1), Cpu, CpuPerDelivery, ToolCpu, new("connections closed by the server", "connections closed by the server", 0),
            ],
            [("overload-batch", "broker batch")]),
        new("many-topics", "Many topics: 1,000 topics × 2 subscribers, one publisher round robin at 5,000 msg/s for 10 s",
            "Then the highest passing rate (every message delivered, p99 < 50 ms; 5 s steps).",
            [
                new("delivered fraction", "delivered fraction at 5,000/s", 1), new("deliveries/s", "deliveries/s", 1), new("e2e p50 ms", "end to end p50 (ms)", -1),
                new("e2e p99 ms", "end to end p99 (ms)", -1), new("passed", "passed (all delivered, p99 < 50 ms)", 0), Cpu, CpuPerDelivery, ToolCpu,
                new("connect+subscribe s", "2,000 connects + subscribes (s)", -1), new("max rate msg/s", "highest passing rate (msg/s)", 1),
                new("steps", "steps", 0),
            ],
            []),
        new("publish-1", "Publish throughput: 1 connection, 1,024 in flight",
            "Acknowledged publishes/s (broker: acks=all on the embedded log). NATS core has no per-message ack: its figure is PUBs/s flushed with one PING/PONG at the end.",
            [new("publishes/s", "publishes/s", 1), new("publish→ack p50 ms", "publish→ack p50 (ms)", -1), new("publish→ack p99 ms", "publish→ack p99 (ms)", -1), Cpu, CpuPerPublish, ToolCpu],
            []),
        new("publish-10", "Publish throughput: 10 connections, 1,024 in flight each, a topic each",
            "As above.",
            [new("publishes/s", "publishes/s", 1), new("publish→ack p50 ms", "publish→ack p50 (ms)", -1), new("publish→ack p99 ms", "publish→ack p99 (ms)", -1), Cpu, CpuPerPublish, ToolCpu],
            []),
        new("ack-latency", "Publish→ack latency: 1 connection at 1,000 msg/s for 10 s",
            "NATS core has no per-message ack (n/a).",
            [new("publish→ack p50 ms", "publish→ack p50 (ms)", -1), new("publish→ack p99 ms", "publish→ack p99 (ms)", -1), new("publish→ack max ms", "publish→ack max (ms)", -1), Cpu, ToolCpu],
            []),
        new("idle", "Idle connections: 10,000, each subscribed to a topic of its own",
            "Fresh server. Memory = (server RSS after − before) / connections, after a 5 s settle; time = open and subscribe all, 64 at a time.",
            [
                new("KiB per connection", "KiB per connection", -1), new("open+subscribe s", "open + subscribe all (s)", -1), new("subscribes/s", "subscribes/s", 1),
                new("connections subscribed", "connections subscribed", 0), Cpu, ToolCpu,
            ],
            []),
        new("topics", "100,000 topics on one node: 100 connections × 1,000 subscriptions",
            "Fresh server. Memory per topic = (server RSS after − before) / topics.",
            [
                new("KiB per topic", "KiB per topic", -1), new("open+subscribe s", "open + subscribe all (s)", -1), new("subscribes/s", "subscribes/s", 1),
                new("connections subscribed", "connections subscribed", 0), new("note", "note", 0),
            ],
            []),
        new("lastn", "last: 100 on a shared partition holding 1,000,000 records of other topics (broker only)",
            "Fresh broker. Time from sending `subscribe {last:100}` to the 100th message, on fresh connections one after the other: right after the fill (the target's figure), and again after 10 s without writes.",
            [
                new("last 100 first ms", "first subscribe (ms)", -1), new("last 100 median ms", "median (ms)", -1), new("last 100 all ms", "each (ms)", 0), new("settled last 100 median ms", "median after 10 s without writes (ms)", -1), new("settled last 100 all ms", "each after 10 s without writes (ms)", 0),
                new("shared topic partitions", "shared Kafka topic partitions", 0), new("shared topic records retained", "records retained in it", 0),
                new("fill records/s", "fill records/s (Confluent.Kafka)", 0), new("note", "note", 0),
            ],
            []),
        new("replay", "Replay: 50 clients subscribe `from: earliest` to 5,000 retained messages at once (broker only)",
            "Time until every client has all 5,000; the node's feed is cold (first subscriber of the topic).",
            [
                new("all done s", "all clients done (s)", -1), new("messages/s", "messages/s", 1), new("first / median client done s", "first / median client (s)", 0),
                new("clients with all", "clients with every message", 0),
            ],
            []),
    ];

    public static int Run(string[] args)
    {
        string? dir = null;
        var readme = false;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--dir" && i + 1 < args.Length) dir = args[++i];
            else if (args[i] == "--readme") readme = true;
            else throw new ArgumentException($"report: unexpected '{args[i]}' (report --dir DIR [--readme])");
        }
        if (dir is null || !Directory.Exists(dir)) throw new ArgumentException("report: --dir DIR (a directory of results) is required");
        var results = Load(dir);
        var meta = File.Exists(Path.Combine(dir, "meta.json")) ? JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "meta.json"))).RootElement : default;
        Console.Write(readme ? Readme(results, meta) : Full(results, meta));
        return 0;
    }

    private sealed record Res(string Target, string Label, JsonElement Params, JsonElement Metrics, string[] Problems)
    {
        public JsonElement? Get(string metric) => Metrics.ValueKind == JsonValueKind.Object && Metrics.TryGetProperty(metric, out var v) ? v : null;

        public double? Num(string metric) => Get(metric) is { ValueKind: JsonValueKind.Number } v ? v.GetDouble() : null;

        /// <summary>"a / b" strings as a/b (e.g. "10000 / 10000").</summary>
        public (double A, double B)? Pair(string metric)
        {
            if (Get(metric) is not { ValueKind: JsonValueKind.String } v) return null;
            var parts = v.GetString()!.Split('/', StringSplitOptions.TrimEntries);
            return parts.Length == 2 && double.TryParse(parts[0].Split(' ')[0], Inv, out var a) && double.TryParse(parts[1].Split(' ')[0], Inv, out var b) ? (a, b) : null;
        }
    }

    private static Dictionary<(string Target, string Label), Res> Load(string dir)
    {
        var all = new Dictionary<(string, string), Res>();
        foreach (var file in Directory.GetFiles(dir, "*.json").Order())
        {
            if (Path.GetFileName(file) == "meta.json") continue;
            try
            {
                var root = JsonDocument.Parse(File.ReadAllText(file)).RootElement;
                var target = root.GetProperty("target").GetString()!;
                var label = root.GetProperty("label").GetString() is { Length: > 0 } l ? l : root.GetProperty("scenario").GetString()!;
                all[(target, label)] = new Res(target, label, root.GetProperty("params"), root.GetProperty("metrics"),
                    root.GetProperty("problems").EnumerateArray().Select(p => p.GetString() ?? "").ToArray());
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                // A scenario that crashed leaves a partial file: name it in the report.
                var name = Path.GetFileNameWithoutExtension(file).Split('.', 2);
                if (name.Length == 2) all[(name[0], name[1])] = new Res(name[0], name[1], default, default, [$"unreadable result ({e.GetType().Name}): the load tool did not finish"]);
            }
        }
        return all;
    }

    private static string Meta(JsonElement meta, string name) =>
        meta.ValueKind == JsonValueKind.Object && meta.TryGetProperty(name, out var v) ? v.ToString() : "?";

    private static string Full(Dictionary<(string Target, string Label), Res> results, JsonElement meta)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Benchmark: broker vs bare Kestrel (ceiling) vs nats-server, one run").AppendLine();
        sb.AppendLine($"- date: {Meta(meta, "date")}; commit: {Meta(meta, "commit")}");
        sb.AppendLine($"- machine: {Meta(meta, "machine")}");
        sb.AppendLine($"- load average before / after the run: {Meta(meta, "load_before")} / {Meta(meta, "load_after")} (other work on the machine makes the numbers noisy)");
        sb.AppendLine($"- targets: {Meta(meta, "targets")}; scenarios: {Meta(meta, "scenarios")}; wall time {Meta(meta, "seconds")} s");
        sb.AppendLine($"- broker: Release, one node, embedded log; BROKER_CONFIG: {Meta(meta, "broker_config")}");
        sb.AppendLine($"- multiplexed namespace for `mx.>` topics (issue 11 scenarios: many-topics, idle, topics, lastn): {Meta(meta, "multiplex")}; permessage-deflate: {Meta(meta, "compression")}");
        sb.AppendLine($"- ceiling: bench/Ceiling (bare Kestrel, in-memory fanout, one message per frame); nats: {Meta(meta, "nats")} with WebSocket on (no_tls), loopback");
        sb.AppendLine("- every server and the load tool share the machine's cores: compare ratios from the same run, not absolute figures across runs");
        sb.AppendLine();
        sb.AppendLine("Ratios: broker figure ÷ peer figure from this run. ↑ = higher is better, ↓ = lower is better.").AppendLine();
        sb.Append(Targets(results, meta));
        foreach (var s in Sections) sb.Append(Table(s, results));
        sb.Append(Compression(results));
        return sb.ToString();
    }

    private static IEnumerable<(string Column, Res? Res)> Columns(Section s, Dictionary<(string, string), Res> results)
    {
        foreach (var t in new[] { "ceiling", "nats", "broker" })
            yield return (t, results.GetValueOrDefault((t, s.Label)));
        foreach (var (label, column) in s.BrokerVariants)
            if (results.TryGetValue(("broker", label), out var v)) yield return (column, v);
    }

    private static string Table(Section s, Dictionary<(string, string), Res> results)
    {
        var cols = Columns(s, results).ToList();
        if (cols.All(c => c.Res is null)) return "";
        var brokers = cols.Where(c => c.Column.StartsWith("broker", StringComparison.Ordinal) && c.Res is not null).ToList();
        var sb = new StringBuilder();
        sb.AppendLine($"## {s.Title}").AppendLine().AppendLine(s.Note).AppendLine();
        var header = new List<string> { "metric" };
        header.AddRange(cols.Select(c => c.Column));
        foreach (var b in brokers) foreach (var p in Peers) header.Add($"{b.Column} ÷ {p}");
        sb.AppendLine("| " + string.Join(" | ", header) + " |").AppendLine("|" + string.Concat(Enumerable.Repeat(" --- |", header.Count)));
        foreach (var row in s.Rows)
        {
            if (cols.All(c => c.Res?.Get(row.Metric) is null)) continue;
            var line = new List<string> { row.Label + (row.Better > 0 ? " ↑" : row.Better < 0 ? " ↓" : "") };
            line.AddRange(cols.Select(c => c.Res is null ? "not run" : Show(c.Res.Get(row.Metric))));
            foreach (var b in brokers)
                foreach (var p in Peers)
                    line.Add(row.Better == 0 ? "" : Ratio(b.Res!.Num(row.Metric), results.GetValueOrDefault((p, s.Label))?.Num(row.Metric)));
            sb.AppendLine("| " + string.Join(" | ", line) + " |");
        }
        sb.AppendLine();
        foreach (var (column, res) in cols)
            if (res is { Problems.Length: > 0 }) sb.AppendLine($"- problems ({column}): {string.Join("; ", res.Problems)}");
        foreach (var (column, res) in cols)
            if (res?.Get("note") is { } note && !s.Rows.Any(r => r.Metric == "note")) sb.AppendLine($"- note ({column}): {note}");
        sb.AppendLine();
        return sb.ToString();
    }

    private static string Compression(Dictionary<(string, string), Res> results)
    {
        var cols = new List<(string Column, Res Res)>();
        foreach (var t in new[] { "ceiling", "broker" })
            foreach (var (label, name) in new[] { ("fanout-json", "plain"), ("fanout-json-deflate", "deflate") })
                if (results.TryGetValue((t, label), out var r)) cols.Add(($"{t} {name}", r));
        if (cols.Count == 0) return "";
        var sb = new StringBuilder();
        sb.AppendLine("## permessage-deflate: 1,000 subscribers × 120 msg/s, ~300-byte JSON order updates").AppendLine();
        sb.AppendLine("Bytes on the wire = what the load tool's sockets read (server → client, WebSocket framing included) per delivered message; " +
                      "payload = after decompression. Compression is negotiated only when the server enables it.").AppendLine();
        sb.AppendLine("| metric | " + string.Join(" | ", cols.Select(c => c.Column)) + " |").AppendLine("|" + string.Concat(Enumerable.Repeat(" --- |", cols.Count + 1)));
        foreach (var (metric, label) in new[]
                 {
                     ("wire bytes per delivery", "bytes on the wire per delivery"), ("payload bytes per delivery", "payload bytes per delivery"),
                     ("server CPU cores", "server CPU (cores)"), ("server CPU µs per delivery", "server CPU per delivery (µs)"),
                     ("tool CPU cores", "load-tool CPU (cores)"), ("tool CPU µs per delivery", "load-tool CPU per delivery (µs)"), ("e2e p50 ms", "end to end p50 (ms)"),
                     ("e2e p99 ms", "end to end p99 (ms)"), ("all delivered", "every message delivered"),
                 })
            sb.AppendLine($"| {label} | " + string.Join(" | ", cols.Select(c => Show(c.Res.Get(metric)))) + " |");
        sb.AppendLine();
        foreach (var t in new[] { "ceiling", "broker" })
        {
            if (!results.TryGetValue((t, "fanout-json"), out var plain) || !results.TryGetValue((t, "fanout-json-deflate"), out var deflate)) continue;
            var (pw, dw, pc, dc) = (plain.Num("wire bytes per delivery"), deflate.Num("wire bytes per delivery"), plain.Num("server CPU µs per delivery"), deflate.Num("server CPU µs per delivery"));
            if (pw is null || dw is null) continue;
            var negotiated = dw < 0.9 * deflate.Num("payload bytes per delivery");
            sb.AppendLine(negotiated
                ? $"- {t}: deflate saves {1 - dw / pw:P0} of the bytes on the wire; server CPU per delivery {Num(pc)} → {Num(dc)} µs ({Ratio(dc, pc)})."
                : $"- {t}: the server did not compress (permessage-deflate not negotiated).");
        }
        foreach (var (column, res) in cols)
            if (res.Problems.Length > 0) sb.AppendLine($"- problems ({column}): {string.Join("; ", res.Problems)}");
        sb.AppendLine();
        return sb.ToString();
    }

    // ---- targets ------------------------------------------------------------------------------

    private sealed record TargetLine(string Issue, string Target, string Measured, bool? Met);

    private static List<TargetLine> EvaluateTargets(Dictionary<(string Target, string Label), Res> r, JsonElement meta)
    {
        Res? Get(string t, string l) => r.GetValueOrDefault((t, l));
        double? N(string t, string l, string m) => Get(t, l)?.Num(m);
        var lines = new List<TargetLine>();
        var multiplex = Meta(meta, "multiplex").StartsWith("on", StringComparison.Ordinal);

        TargetLine RatioTarget(string issue, string text, string label, string metric, string peer, double need, string unit, string? brokerLabel = null, bool lowerIsBetter = false)
        {
            var b = N("broker", brokerLabel ?? label, metric);
            var p = N(peer, label, metric);
            if (b is null || p is null || p == 0) return new(issue, text, "not measured", null);
            var ratio = b.Value / p.Value;
            return new(issue, text, $"{Num(b)} vs {Num(p)} {unit} = {ratio:0.00}×", lowerIsBetter ? ratio <= need : ratio >= need);
        }

        lines.Add(RatioTarget("10", "fanout max rate ≥ 1.0× the ceiling (one message per frame)", "fanout-max", "max rate msg/s", "ceiling", 1.0, "msg/s"));
        var batch = RatioTarget("10", "with frame batching (`?batch=1`), fanout max rate ≥ 1.0× nats-server", "fanout-max", "max rate msg/s", "nats", 1.0, "msg/s", "fanout-max-batch");
        if (Get("broker", "fanout-batch")?.Num("array frames received") is 0.0)
            batch = batch with { Measured = batch.Measured + " — no array frame seen: batching not active in this broker", Met = null };
        lines.Add(batch);
        lines.Add(RatioTarget("10", "1,000 subscribers × 120 msg/s: p99 end to end ≤ 1.2× the ceiling's", "fanout", "e2e p99 ms", "ceiling", 1.2, "ms", lowerIsBetter: true));
        lines.Add(RatioTarget("10", "same load: server CPU ≤ 1.1× the ceiling's", "fanout", "server CPU cores", "ceiling", 1.1, "cores", lowerIsBetter: true));
        lines.Add(RatioTarget("10", "(the same, per delivery: less sensitive to other work on the machine)", "fanout", "server CPU µs per delivery", "ceiling", 1.1, "µs", lowerIsBetter: true) with { Met = null });
        var many = Get("broker", "many-topics");
        var manyFrac = many?.Num("delivered fraction");
        var manyP99 = many?.Num("e2e p99 ms");
        var manyLine = many is null || manyFrac is null
            ? new TargetLine("10, 11", "1,000 topics × 2 subscribers at 5,000 msg/s: every message delivered, p99 < 50 ms", "not measured", null)
            : new TargetLine("10, 11", "1,000 topics × 2 subscribers at 5,000 msg/s: every message delivered, p99 < 50 ms",
                $"{manyFrac:P1} delivered, p99 {Num(manyP99)} ms{(multiplex ? "" : " (plain per-topic mapping)")}", manyFrac >= 1 && manyP99 < 50);
        lines.Add(manyLine);
        lines.Add(RatioTarget("10", "many topics: highest passing rate ≥ 0.8× nats-server", "many-topics", "max rate msg/s", "nats", 0.8, "msg/s"));
        var p1 = N("broker", "publish-1", "publishes/s");
        lines.Add(new("10", "one publishing connection: ≥ 30,000 acknowledged publishes/s", p1 is null ? "not measured" : $"{Num(p1)}/s", p1 is null ? null : p1 >= 30_000));
        var p10 = N("broker", "publish-10", "publishes/s");
        lines.Add(new("10", "10 publishing connections: ≥ 50,000 acknowledged publishes/s", p10 is null ? "not measured" : $"{Num(p10)}/s", p10 is null ? null : p10 >= 50_000));
        var ack = N("broker", "ack-latency", "publish→ack p99 ms");
        lines.Add(new("10", "publish→ack p99 ≤ 5 ms at 1,000 msg/s", ack is null ? "not measured" : $"p99 {Num(ack)} ms (p50 {Num(N("broker", "ack-latency", "publish→ack p50 ms"))})", ack is null ? null : ack <= 5));
        var kib = N("broker", "idle", "KiB per connection");
        var kibC = N("ceiling", "idle", "KiB per connection");
        var kibN = N("nats", "idle", "KiB per connection");
        lines.Add(new("10", "idle: ≤ 16 KiB per connection, below both peers", kib is null ? "not measured" : $"{Num(kib)} KiB (ceiling {Num(kibC)}, nats {Num(kibN)})",
            kib is null ? null : kib <= 16 && (kibC is null || kib < kibC) && (kibN is null || kib < kibN)));
        var idle = Get("broker", "idle");
        var idleS = idle?.Num("open+subscribe s");
        var idleAll = idle?.Pair("connections subscribed") is { } pr && pr.A == pr.B && pr.B > 0;
        var natsIdle = N("nats", "idle", "open+subscribe s");
        var idleText = idleS is null ? "not measured" : $"{(idleAll ? "all" : idle!.Get("connections subscribed")?.ToString())} in {Num(idleS)} s (nats {Num(natsIdle)} s)";
        lines.Add(new("10", "10,000 connections with a topic each opened and subscribed in ≤ 10 s", idleText, idleS is null ? null : idleAll && idleS <= 10));
        lines.Add(new("10", "no regression of any guarantee (tests pass, acks = acks=all)", "not measured by the benchmark (the test suite)", null));
        lines.Add(new("11", "10,000 connections each on its own topic of a multiplexed namespace: all subscribed in ≤ 10 s",
            idleS is null ? "not measured" : idleText + (multiplex ? "" : " — no multiplexed namespace in this run"), idleS is null || !multiplex ? null : idleAll && idleS <= 10));
        var topics = Get("broker", "topics");
        var perTopic = topics?.Num("KiB per topic");
        var topicsAll = topics?.Pair("connections subscribed") is { } tp && tp.A == tp.B && tp.B > 0;
        lines.Add(new("11", "100,000 topics with one subscriber each held by one node; memory per topic reported",
            perTopic is null ? topics?.Get("note")?.ToString() ?? "not measured"
                : $"{Num(perTopic)} KiB per topic; {topics!.Get("connections subscribed")} connections subscribed in {Num(topics.Num("open+subscribe s"))} s (ceiling {Num(N("ceiling", "topics", "KiB per topic"))}, nats {Num(N("nats", "topics", "KiB per topic"))} KiB)",
            perTopic is null ? null : topicsAll));
        var last = Get("broker", "lastn");
        var lastMax = last?.Get("last 100 all ms")?.GetString()?.Split('/', StringSplitOptions.TrimEntries).Select(x => double.Parse(x, Inv)).Max();
        var retained = last?.Num("shared topic records retained");
        var lastValid = multiplex && retained >= 1_000_000;
        lines.Add(new("11", "a topic's `last: 100` on a shared partition holding 1,000,000 records of other topics answers in ≤ 50 ms",
            lastMax is null ? "not measured" : $"slowest of {last!.Get("last 100 all ms")} ms = {Num(lastMax)} ms{(lastValid ? "" : $" — not the target's setting (multiplex {Meta(meta, "multiplex")}, {Num(retained)} records retained)")}",
            lastMax is null || !lastValid ? null : lastMax <= 50 && last!.Problems.Length == 0));
        return lines;
    }

    private static string Targets(Dictionary<(string, string), Res> results, JsonElement meta)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Targets (issues 10 and 11)").AppendLine();
        sb.AppendLine("| issue | target | measured | met |").AppendLine("| --- | --- | --- | --- |");
        foreach (var t in EvaluateTargets(results, meta))
            sb.AppendLine($"| {t.Issue} | {t.Target} | {t.Measured} | {(t.Met is null ? "n/a" : t.Met.Value ? "**met**" : "not met")} |");
        sb.AppendLine();
        return sb.ToString();
    }

    // ---- README -------------------------------------------------------------------------------

    private static string Readme(Dictionary<(string Target, string Label), Res> r, JsonElement meta)
    {
        string V(string t, string l, string m, string unit = "") => r.GetValueOrDefault((t, l))?.Num(m) is { } v ? Num(v) + unit : "—";
        var sb = new StringBuilder();
        sb.AppendLine("## Performance").AppendLine();
        sb.AppendLine($"Measured with `bench/run.sh` (see `bench/README.md`) on {Meta(meta, "machine")}, {Meta(meta, "date")}, commit {Meta(meta, "commit")}: " +
                      $"the broker (one Release node, embedded log), a bare-Kestrel server with the same JSON protocol and in-memory fanout (the \".NET ceiling\", `bench/Ceiling`) " +
                      $"and Debian's {Meta(meta, "nats")} with WebSocket on, side by side in one run; servers and load tool share the cores " +
                      $"(load average {Meta(meta, "load_before")} → {Meta(meta, "load_after")}). Ratios are broker ÷ peer from the same run. " +
                      "Full tables: `bench/results/latest.md`.").AppendLine();
        sb.AppendLine("| scenario | nats-server | ceiling | broker | broker ÷ ceiling | broker ÷ nats |").AppendLine("| --- | --- | --- | --- | --- | --- |");
        void Line(string name, string label, string metric, string unit = "", string? brokerLabel = null)
        {
            var bl = brokerLabel ?? label;
            if (!r.ContainsKey(("broker", bl)) && !r.ContainsKey(("nats", label)) && !r.ContainsKey(("ceiling", label))) return;
            sb.AppendLine($"| {name} | {V("nats", label, metric, unit)} | {V("ceiling", label, metric, unit)} | {V("broker", bl, metric, unit)} | " +
                          $"{Ratio(r.GetValueOrDefault(("broker", bl))?.Num(metric), r.GetValueOrDefault(("ceiling", label))?.Num(metric))} | " +
                          $"{Ratio(r.GetValueOrDefault(("broker", bl))?.Num(metric), r.GetValueOrDefault(("nats", label))?.Num(metric))} |");
        }
        Line("fanout max rate, 1,000 subscribers (msg/s, every message, p99 < 100 ms)", "fanout-max", "max rate msg/s");
        Line("same, broker with `?batch=1`", "fanout-max", "max rate msg/s", brokerLabel: "fanout-max-batch");
        Line("fanout 1,000 × 120 msg/s: p99 end to end (ms)", "fanout", "e2e p99 ms");
        Line("fanout 1,000 × 120 msg/s: server CPU (cores)", "fanout", "server CPU cores");
        Line("fanout 1,000 × 120 msg/s: server CPU per delivery (µs)", "fanout", "server CPU µs per delivery");
        Line("fanout 1,000 × 2,000 msg/s (overload): deliveries/s", "overload", "deliveries/s");
        Line("same, broker with `?batch=1`", "overload", "deliveries/s", brokerLabel: "overload-batch");
        Line("1,000 topics × 2 subscribers at 5,000 msg/s: delivered fraction", "many-topics", "delivered fraction");
        Line("same: p99 end to end (ms)", "many-topics", "e2e p99 ms");
        Line("many topics: highest passing rate (msg/s)", "many-topics", "max rate msg/s");
        Line("publishes/s, 1 connection (NATS: no ack)", "publish-1", "publishes/s");
        Line("publishes/s, 10 connections (NATS: no ack)", "publish-10", "publishes/s");
        Line("publish→ack p99 at 1,000 msg/s (ms)", "ack-latency", "publish→ack p99 ms");
        Line("10,000 idle connections: KiB per connection", "idle", "KiB per connection");
        Line("10,000 connections: open + subscribe all (s)", "idle", "open+subscribe s");
        Line("100,000 topics on one node: KiB per topic", "topics", "KiB per topic");
        Line("`last: 100` under 1,000,000 other records (ms, median)", "lastn", "last 100 median ms");
        sb.AppendLine();
        sb.Append(Targets(r, meta).Replace("## Targets (issues 10 and 11)", "### Targets (issues 10 and 11)"));
        return sb.ToString();
    }

    // ---- formatting ---------------------------------------------------------------------------

    private static string Show(JsonElement? v) => v switch
    {
        null => "—",
        { ValueKind: JsonValueKind.Number } n => Num(n.GetDouble()),
        { ValueKind: JsonValueKind.True } => "yes",
        { ValueKind: JsonValueKind.False } => "no",
        { } s => (s.GetString() ?? "").Replace("|", "/"),
    };

    private static string Num(double? d) => d switch
    {
        null => "—",
        >= 1_000_000 => (d.Value / 1e6).ToString("0.00", Inv) + " M",
        >= 100 => d.Value.ToString("#,0", Inv),
        _ when d.Value == Math.Round(d.Value) => d.Value.ToString("0", Inv),
        >= 10 => d.Value.ToString("0.0", Inv),
        _ => d.Value.ToString("0.00", Inv),
    };

    private static string Ratio(double? broker, double? peer) =>
        broker is null || peer is null || peer == 0 ? "" : (broker.Value / peer.Value).ToString(broker.Value / peer.Value >= 10 ? "0" : "0.00", Inv) + "×";
}
