using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Broker.Bench;

const string Usage = """
    usage: Broker.Bench <scenario> [--name value ...] [--json]
           Broker.Bench report --dir DIR [--readme]     (tables from the --json results in DIR)
           Broker.Bench free-port                        (prints a free 127.0.0.1 TCP port)
    scenarios: fanout, fanout-max, many-topics, publish, ack-latency, idle, topics, replay, lastn
      common:  --target broker|ceiling|nats (broker)  --port 8080  --timeout 120 (s, whole scenario)
               --server-pid PID (server CPU, RSS and bytes written from /proc)  --label NAME (variant name in the report)
               --size 100 (data bytes)  --payload pad|json (json: a ~300-byte realistic order update)
               --prefix bench (topics are <prefix>.<scenario>.<random>)  --keys 0 (K > 0: publish i carries key "k{i % K}")
               --batch 0|1 (broker: connect with ?batch=1)  --compress 0|1 (offer permessage-deflate)
      fanout:      --subscribers 1000 --rate 120 --seconds 10 --warmup 2 --drain 10 --window 4096 --join-parallel 16
                   --lenient 0 (1: missing messages and server closes are reported, not problems: overload)
      fanout-max:  --subscribers 1000 --start 100 --max 12800 --step-seconds 5 --bisect 3 --retries 1 --p99-ms 100 --drain 3
      many-topics: --topics 1000 --per-topic 2 --rate 5000 --seconds 10 --drain 10 --p99-ms 50
                   --search 1 (then the highest passing rate: --step-seconds 5 --bisect 3 --max 64000)
      publish:     --publishers 1 --messages 200000 (each) --window 1024 --seconds 10 (sending stops then) --rate 0
                   --shared-topic 0 (1: all publishers on one topic)
      ack-latency: publish with --publishers 1 --rate 1000 --seconds 10 --window 64
      idle:        --connections 10000 (each subscribed to its own topic) --warm 50 --settle 5 --open-parallel 64
      topics:      idle with --connections 100 --per-connection 1000 (100,000 topics): memory per topic
      replay:      --count 5000 --clients 50 --window 64 --warm 0 (broker only)
      lastn:       --history 150 --last 100 --repeats 3 --fill 1000000 --fill-topics 10000 --fill-size 16
                   --kafka-port P --kafka-topic broker.mx --partitions 12 (broker only; --fill 0 skips the fill; the embedded
                   log keeps ~5 MB per partition: the fill records stay small so that the topic's own are not dropped)
    """;

if (args is ["free-port"])
{
    var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    Console.WriteLine(((IPEndPoint)l.LocalEndpoint).Port);
    l.Stop();
    return 0;
}
if (args is ["report", ..])
{
    try
    {
        return Report.Run(args[1..]);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
}

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
var result = new Result(o.Scenario, o.Target.ToString().ToLowerInvariant(), o.Label);
try
{
    await Scenarios.Run(o, result, deadline.Token);
}
catch (Exception e) when (e is OperationCanceledException or System.Net.WebSockets.WebSocketException or InvalidOperationException or NotSupportedException)
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
        public static readonly string[] Scenarios = ["fanout", "fanout-max", "many-topics", "publish", "ack-latency", "idle", "topics", "replay", "lastn"];

        private static readonly HashSet<string> Known =
        [
            "port", "timeout", "size", "publishers", "messages", "window", "subscribers", "rate", "seconds", "drain", "join-parallel",
            "count", "clients", "warm", "keys", "server-pid", "batch", "compress", "warmup", "lenient", "start", "max", "step-seconds",
            "bisect", "retries", "p99-ms", "topics", "per-topic", "search", "shared-topic", "connections", "per-connection", "settle", "open-parallel",
            "history", "last", "repeats", "fill", "fill-topics", "fill-size", "kafka-port", "partitions",
        ];

        private static readonly HashSet<string> Strings = ["target", "payload", "prefix", "kafka-topic", "label"];

        /// <summary>Options that may be 0 (all other numbers must be positive).</summary>
        private static readonly HashSet<string> ZeroAllowed = ["keys", "batch", "compress", "warmup", "lenient", "search", "shared-topic", "warm", "rate", "fill", "server-pid", "settle", "bisect", "retries"];

        /// <summary>The longest <c>--prefix</c>: a topic name is the prefix, a dot, the scenario, a dot and 12 or more random characters, so ≤ 200.</summary>
        public const int MaxPrefix = 150;

        private readonly Dictionary<string, string> _values = [];

        public required string Scenario { get; init; }
        public bool Json { get; private set; }

        public Target Target => Str("target", "broker") switch
        {
            "broker" => Target.Broker,
            "ceiling" => Target.Ceiling,
            "nats" => Target.Nats,
            var t => throw new ArgumentException($"unknown target '{t}'"),
        };

        public Endpoint Endpoint => new(Target, Int("port", 8080), Int("batch", 0) > 0, Int("compress", 0) > 0);

        /// <summary><c>--label</c>: the variant's name in the report (default: derived from batch/compress/payload).</summary>
        public string Label => Str("label", "");

        public Payload Payload => new(Int("size", 100), Str("payload", "pad") == "json");

        public static Options Parse(string[] args)
        {
            if (args.Length == 0 || !Scenarios.Contains(args[0])) throw new ArgumentException("name a scenario");
            var o = new Options { Scenario = args[0] };
            for (var i = 1; i < args.Length; i++)
            {
                var name = args[i].StartsWith("--", StringComparison.Ordinal) ? args[i][2..] : throw new ArgumentException($"unexpected '{args[i]}'");
                if (name == "json") o.Json = true;
                else if (Strings.Contains(name))
                {
                    if (i + 1 >= args.Length) throw new ArgumentException($"--{name} needs a value");
                    o._values[name] = args[++i];
                }
                else if (!Known.Contains(name)) throw new ArgumentException($"unknown option --{name}");
                else if (i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var v) && (v > 0 || (v == 0 && ZeroAllowed.Contains(name)))) o._values[name] = args[++i];
                else throw new ArgumentException($"--{name} needs a {(ZeroAllowed.Contains(name) ? "non-negative" : "positive")} integer");
            }
            if (!ValidPrefix(o.Prefix)) throw new ArgumentException($"--prefix needs 1–{MaxPrefix} characters of [A-Za-z0-9._-], not starting or ending with '.' and without '..'");
            if (o.Str("payload", "pad") is not ("pad" or "json")) throw new ArgumentException("--payload is pad or json");
            _ = o.Target;
            return o;
        }

        /// <summary><c>--prefix</c>: the first part of every topic name (default <c>bench</c>).</summary>
        public string Prefix => Str("prefix", "bench");

        /// <summary><c>--keys</c>: 0 = publishes without key; K &gt; 0 = publish i carries key <c>k{i % K}</c>.</summary>
        public int Keys => Int("keys", 0);

        // Non-empty dot segments, so that namespace patterns such as "mx.>" match <prefix>.<scenario>.<random>.
        private static bool ValidPrefix(string p) =>
            p.Length is > 0 and <= MaxPrefix && !p.StartsWith('.') && !p.EndsWith('.') && !p.Contains("..", StringComparison.Ordinal)
            && p.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-');

        public int Int(string name, int fallback) => _values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        public string Str(string name, string fallback) => _values.GetValueOrDefault(name, fallback);
    }

    /// <summary>What a scenario ran with, what it measured, and what went wrong.</summary>
    public sealed class Result(string scenario, string target, string label)
    {
        public string Scenario { get; } = scenario;
        public string Target { get; } = target;
        public string Label { get; set; } = label;
        public List<(string Name, object Value)> Params { get; } = [];
        public List<(string Name, object Value)> Metrics { get; } = [];
        public List<string> Problems { get; } = [];

        public Result Param(string name, object value) { Params.Add((name, value)); return this; }
        public Result Metric(string name, object value) { Metrics.Add((name, value)); return this; }
        public void Problem(string text) => Problems.Add(text);

        /// <summary>p50, p95, p99 and max as separate metrics named "<paramref name="name"/> p50 ms" etc.</summary>
        public void Latency(string name, LatencySummary s)
        {
            if (s.Count == 0) return;
            Metric($"{name} p50 ms", s.P50).Metric($"{name} p95 ms", s.P95).Metric($"{name} p99 ms", s.P99).Metric($"{name} max ms", s.Max);
        }

        public static string Show(object v) => v switch
        {
            double d => d.ToString(Math.Abs(d) >= 100 ? "0" : Math.Abs(d) >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture),
            bool b => b ? "yes" : "no",
            _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
        };

        public string ToMarkdown()
        {
            var sb = new StringBuilder();
            sb.Append("### ").Append(Scenario).Append(" — ").Append(Target).AppendLine(Label.Length > 0 ? $" ({Label})" : "").AppendLine();
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
                w.WriteString("target", Target);
                w.WriteString("label", Label);
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
                    case double d: w.WriteNumber(k, Math.Round(d, 4)); break;
                    case int i: w.WriteNumber(k, i); break;
                    case long l: w.WriteNumber(k, l); break;
                    case bool b: w.WriteBoolean(k, b); break;
                    default: w.WriteString(k, Show(v)); break;
                }
            }
            w.WriteEndObject();
        }
    }
}
