using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Broker.Cli;

/// <summary>How brokerctl prints the admin API's answers: tables for snapshots, one line per event for streams.</summary>
internal static class Views
{
    public static IAnsiConsole Console(TextWriter writer)
    {
        var terminal = ReferenceEquals(writer, System.Console.Out) && !System.Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        if (!terminal) console.Profile.Width = 240;
        return console;
    }

    public static string S(JsonNode? n) => n switch
    {
        null => "",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => n.ToJsonString(),
    };

    private static IRenderable T(string s) => new Text(s);

    private static Table NewTable(params string[] columns)
    {
        var t = new Table().Border(TableBorder.Rounded);
        foreach (var c in columns) t.AddColumn(new TableColumn(Markup.Escape(c)));
        return t;
    }

    private static IEnumerable<JsonNode> Items(JsonNode? n) => (n as JsonArray)?.Where(x => x is not null).Select(x => x!) ?? [];

    private static bool True(JsonNode? n) => S(n) == "true";

    public static void Cluster(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Address", "Status", "Roles", "Reachable", "Leader", "Self");
        foreach (var m in Items(n["members"]))
        {
            t.AddRow(T(S(m["address"])), T(S(m["status"])), T(string.Join(",", Items(m["roles"]).Select(S))),
                T(True(m["reachable"]) ? "yes" : "NO"), T(True(m["leader"]) ? "*" : ""), T(True(m["self"]) ? "*" : ""));
        }
        console.Write(t);
        console.WriteLine($"{Items(n["members"]).Count()} members, leader {(n["leader"] is null ? "none" : S(n["leader"]))}");
    }

    /// <summary>The same members as <see cref="Cluster"/>, counted: by status, and reachable or not by the same flag.</summary>
    public static void Status(IAnsiConsole console, JsonNode n)
    {
        var members = Items(n["members"]).ToList();
        var unreachable = members.Where(m => !True(m["reachable"])).Select(m => S(m["address"])).ToList();
        var byStatus = members.GroupBy(m => S(m["status"])).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}");
        var grid = new Grid().AddColumn().AddColumn();
        grid.AddRow(T("Self"), T(S(n["self"])));
        grid.AddRow(T("Status"), T(S(n["selfStatus"])));
        grid.AddRow(T("Leader"), T(n["leader"] is null ? "none" : S(n["leader"])));
        grid.AddRow(T("Members"), T($"{members.Count} ({string.Join(", ", byStatus)})"));
        grid.AddRow(T("Reachable"), T((members.Count - unreachable.Count).ToString(CultureInfo.InvariantCulture)));
        grid.AddRow(T("Unreachable"), T(unreachable.Count == 0 ? "0" : $"{unreachable.Count}: {string.Join(", ", unreachable)}"));
        console.Write(grid);
    }

    public static void Leader(IAnsiConsole console, JsonNode n)
    {
        if (n["leader"] is not null) console.WriteLine(S(n["leader"]));
    }

    public static string? NoLeader(JsonNode n) => n["leader"] is null
        ? $"{S(n["self"])} sees no leader (it is not in a cluster yet, or no member it can reach is Up)"
        : null;

    public static void Result(IAnsiConsole console, JsonNode n) =>
        console.WriteLine($"{S(n["address"])}: {S(n["result"])}{(n["target"] is null ? "" : $" {S(n["target"])}")}");

    public static void Downed(IAnsiConsole console, JsonNode n)
    {
        var downed = Items(n["downed"]).Select(S).ToList();
        console.WriteLine(downed.Count == 0 ? "no unreachable members" : $"downed {downed.Count}: {string.Join(", ", downed)}");
    }

    public static void Regions(IAnsiConsole console, JsonNode n)
    {
        foreach (var r in Items(n["regions"])) console.WriteLine(S(r));
    }

    public static void RegionStats(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Address", "Shards", "Entities", "Failed");
        foreach (var r in Items(n["regions"]))
            t.AddRow(T(S(r["address"])), T(S(r["shards"])), T(S(r["entities"])), T(string.Join(",", Items(r["failed"]).Select(S))));
        console.Write(t);
    }

    public static void ShardStats(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Address", "Shard", "Entities");
        foreach (var s in Items(n["shards"])) t.AddRow(T(S(s["address"])), T(S(s["shard"])), T(S(s["entities"])));
        console.Write(t);
    }

    private static string PerNode(JsonNode t) => string.Join(", ", Items(t["nodes"]).Select(x => $"{S(x["address"])}={S(x["subscribers"])}"));

    public static void Topics(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Topic", "Kafka topic", "Subscribers", "Per node");
        foreach (var topic in Items(n["topics"])) t.AddRow(T(S(topic["topic"])), T(S(topic["kafkaTopic"])), T(S(topic["subscribers"])), T(PerNode(topic)));
        console.Write(t);
    }

    public static void Settings(IAnsiConsole console, JsonNode n)
    {
        var grid = new Grid().AddColumn().AddColumn();
        grid.AddRow(T("Topic"), T(S(n["topic"])));
        grid.AddRow(T("Read-only"), T((bool?)n["readOnly"] == true ? "yes" : "no"));
        console.Write(grid);
    }

    public static void Topic(IAnsiConsole console, JsonNode n)
    {
        var writer = n["writer"];
        var grid = new Grid().AddColumn().AddColumn();
        grid.AddRow(T("Topic"), T(S(n["topic"])));
        grid.AddRow(T("Kafka topic"), T(S(n["kafkaTopic"])));
        grid.AddRow(T("Shard"), T(S(writer?["shard"])));
        grid.AddRow(T("Owner"), T(writer?["owner"] is { } owner ? S(owner) : "none"));
        grid.AddRow(T("Writer"), T(S(writer?["state"]) switch
        {
            "running" => "running on the owner",
            "stopped" => "not running (idle: passivated; it starts on the next publish)",
            "not started" => "not started (no shard allocated yet; it starts on the first publish)",
            var other => other,
        }));
        grid.AddRow(T("Subscribers"), T(S(n["subscribers"])));
        console.Write(grid);
        var t = NewTable("Address", "Subscribers");
        foreach (var x in Items(n["nodes"])) t.AddRow(T(S(x["address"])), T(S(x["subscribers"])));
        console.Write(t);
    }

    public static void Connections(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Address", "Connections", "Draining");
        foreach (var x in Items(n["nodes"])) t.AddRow(T(S(x["address"])), T(S(x["connections"])), T(True(x["draining"]) ? "yes" : ""));
        console.Write(t);
        console.WriteLine($"total {S(n["total"])}");
    }

    public static void Drained(IAnsiConsole console, JsonNode n) =>
        console.WriteLine($"{S(n["address"])}: drained, {S(n["closed"])} connections closed, {S(n["remaining"])} still open");

    public static void LogLevel(IAnsiConsole console, JsonNode n) =>
        console.WriteLine($"log level {S(n["level"])} (Akka {S(n["akka"])})");

    public static void LogLines(IAnsiConsole console, JsonNode n)
    {
        var w = new StringWriter();
        foreach (var line in Items(n["lines"])) LogLine(w, line);
        console.Profile.Out.Writer.Write(w.ToString());
    }

    private static string Time(JsonNode? n) =>
        DateTimeOffset.TryParse(S(n), CultureInfo.InvariantCulture, DateTimeStyles.None, out var t) ? t.ToLocalTime().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) : S(n);

    /// <summary>One log line as the console logger writes it: time, level, category, message; an exception indented below.</summary>
    public static void LogLine(TextWriter w, JsonNode line)
    {
        var level = S(line["level"]) switch
        {
            "Trace" => "trce",
            "Debug" => "dbug",
            "Information" => "info",
            "Warning" => "warn",
            "Error" => "fail",
            "Critical" => "crit",
            var other => other,
        };
        w.WriteLine($"{Time(line["time"])} {level} {S(line["category"])}: {S(line["message"])}");
        if (line["exception"] is { } e)
            foreach (var l in S(e).Split('\n')) w.WriteLine("    " + l.TrimEnd('\r'));
    }

    /// <summary>One cluster event: time, event, member (status, or the status it had when removed).</summary>
    public static void ClusterEvent(TextWriter w, JsonNode e)
    {
        var detail = e["previous"] is { } previous ? $"(was {S(previous)})" : e["status"] is { } status ? $"({S(status)})" : "";
        var address = e["address"] is null ? "(none)" : S(e["address"]);
        w.WriteLine($"{Time(e["time"])} {S(e["event"]),-17} {address} {detail}".TrimEnd());
    }
}
