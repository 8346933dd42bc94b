using System.Globalization;
using System.Text;
using System.Text.Json;
using Broker.Bench;

const string Usage = """
    usage: Broker.Bench <publish|fanout|replay> [--name value ...] [--json]
      common:  --port 8080 (broker on 127.0.0.1)  --timeout 120 (s, whole scenario)  --size 100 (data bytes)
               --prefix bench (topics are <prefix>.<scenario>.<random>; [A-Za-z0-9._-], at most 150 characters)
               --keys 0 (0: publishes carry no key; K > 0: publish i carries key "k{i % K}", order checked per key)
      publish: --publishers 4 --messages 5000 (each) --window 32 (unacked in flight per publisher)
      fanout:  --subscribers 1000 --rate 100 (msg/s) --seconds 10 --window 64 --drain 10 (s to wait after the last publish)
               --join-parallel 8 (subscribers connecting+subscribing at once)
      replay:  --count 5000 (messages retained) --clients 50 (subscribe from earliest at once) --window 64
               --warm 1 (a live subscriber joins first, so the node already reads the topic)
    """;

Options o;
try
{
    o = Options.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(Usage);
    return 2;
}

using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(o.Int("timeout", 120)));
var result = new Result(o.Scenario);
try
{
    await (o.Scenario switch
    {
        "publish" => Scenarios.Publish(o, result, deadline.Token),
        "fanout" => Scenarios.Fanout(o, result, deadline.Token),
        _ => Scenarios.Replay(o, result, deadline.Token),
    });
}
catch (Exception e) when (e is OperationCanceledException or System.Net.WebSockets.WebSocketException or InvalidOperationException)
{
    // A step that cannot be skipped (connecting, subscribing) failed or missed the deadline.
    result.Problem($"aborted: {e.GetType().Name}: {e.Message}");
}
Console.Write(o.Json ? result.ToJson() : result.ToMarkdown());
return result.Problems.Count == 0 ? 0 : 1;

namespace Broker.Bench
{
    /// <summary><c>scenario --name value ... [--json]</c>; every name must be a known option.</summary>
    public sealed class Options
    {
        private static readonly HashSet<string> Known =
            ["port", "timeout", "size", "publishers", "messages", "window", "subscribers", "rate", "seconds", "drain", "join-parallel", "count", "clients", "warm", "keys"];

        /// <summary>Options that may be 0 (all others need a positive integer).</summary>
        private static readonly HashSet<string> ZeroAllowed = ["keys"];

        /// <summary>The longest <c>--prefix</c>: a topic name is the prefix, a dot, the scenario (≤ 6), a dot and 12 or more random characters (≤ 24 in all), so ≤ 200.</summary>
        public const int MaxPrefix = 150;

        private readonly Dictionary<string, string> _values = [];

        public required string Scenario { get; init; }
        public bool Json { get; private set; }
        public Uri Uri => new($"ws://127.0.0.1:{Int("port", 8080)}/ws");

        public static Options Parse(string[] args)
        {
            if (args.Length == 0 || args[0] is not ("publish" or "fanout" or "replay")) throw new ArgumentException("name a scenario");
            var o = new Options { Scenario = args[0] };
            for (var i = 1; i < args.Length; i++)
            {
                var name = args[i].StartsWith("--", StringComparison.Ordinal) ? args[i][2..] : throw new ArgumentException($"unexpected '{args[i]}'");
                if (name == "json") o.Json = true;
                else if (name == "prefix")
                {
                    if (i + 1 < args.Length && ValidPrefix(args[i + 1])) o.Prefix = args[++i];
                    else throw new ArgumentException($"--prefix needs 1–{MaxPrefix} characters of [A-Za-z0-9._-], not starting or ending with '.' and without '..'");
                }
                else if (!Known.Contains(name)) throw new ArgumentException($"unknown option --{name}");
                else if (i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var v) && (v > 0 || (v == 0 && ZeroAllowed.Contains(name)))) o._values[name] = args[++i];
                else throw new ArgumentException($"--{name} needs a {(ZeroAllowed.Contains(name) ? "non-negative" : "positive")} integer");
            }
            return o;
        }

        /// <summary><c>--prefix</c>: the first part of every topic name (default <c>bench</c>).</summary>
        public string Prefix { get; private set; } = "bench";

        /// <summary><c>--keys</c>: 0 = publishes without key; K &gt; 0 = publish i carries key <c>k{i % K}</c>.</summary>
        public int Keys => Int("keys", 0);

        // Non-empty dot segments, so that namespace patterns such as "mp.>" match <prefix>.<scenario>.<random>.
        private static bool ValidPrefix(string p) =>
            p.Length is > 0 and <= MaxPrefix && !p.StartsWith('.') && !p.EndsWith('.') && !p.Contains("..", StringComparison.Ordinal)
            && p.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-');

        public int Int(string name, int fallback) => _values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>What a scenario ran with, what it measured, and what went wrong.</summary>
    public sealed class Result(string scenario)
    {
        public string Scenario { get; } = scenario;
        public List<(string Name, object Value)> Params { get; } = [];
        public List<(string Name, object Value)> Metrics { get; } = [];
        public List<string> Problems { get; } = [];

        public Result Param(string name, object value) { Params.Add((name, value)); return this; }
        public Result Metric(string name, object value) { Metrics.Add((name, value)); return this; }
        public void Problem(string text) => Problems.Add(text);

        public void Latency(string name, LatencySummary s) =>
            Metric($"{name} ms p50 / p95 / p99 / max", $"{s.P50:0.0} / {s.P95:0.0} / {s.P99:0.0} / {s.Max:0.0} (n={s.Count})");

        private static string Show(object v) => v switch
        {
            double d => d.ToString(d >= 100 ? "0" : "0.00", CultureInfo.InvariantCulture),
            _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
        };

        public string ToMarkdown()
        {
            var sb = new StringBuilder();
            sb.Append("### ").AppendLine(Scenario).AppendLine();
            sb.AppendLine(string.Join(", ", Params.Select(p => $"{p.Name} = {Show(p.Value)}"))).AppendLine();
            sb.AppendLine("| metric | value |").AppendLine("| --- | --- |");
            foreach (var (name, value) in Metrics) sb.AppendLine($"| {name} | {Show(value)} |");
            sb.AppendLine($"| problems | {(Problems.Count == 0 ? "none" : string.Join("; ", Problems))} |").AppendLine();
            return sb.ToString();
        }

        public string ToJson()
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                w.WriteString("scenario", Scenario);
                Section(w, "params", Params);
                Section(w, "metrics", Metrics);
                w.WriteStartArray("problems");
                foreach (var p in Problems) w.WriteStringValue(p);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
        }

        private static void Section(Utf8JsonWriter w, string name, List<(string Name, object Value)> items)
        {
            w.WriteStartObject(name);
            foreach (var (k, v) in items)
            {
                switch (v)
                {
                    case double d: w.WriteNumber(k, Math.Round(d, 3)); break;
                    case int i: w.WriteNumber(k, i); break;
                    case long l: w.WriteNumber(k, l); break;
                    default: w.WriteString(k, Show(v)); break;
                }
            }
            w.WriteEndObject();
        }
    }
}
