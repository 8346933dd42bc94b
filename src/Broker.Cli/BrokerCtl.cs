using System.CommandLine;
using System.Text.Json.Nodes;

namespace Broker.Cli;

/// <summary>
/// brokerctl: the operator's CLI over a broker node's admin HTTP API (<c>broker.admin</c>).
/// Verbs follow Petabridge.Cmd's cluster and sharding palettes (cluster show, cluster tail,
/// cluster leave, sharding region-stats, ...) plus the broker's own (topics list, topic show,
/// connections, node drain, log tail, log set-level); the README maps them verb for verb.
/// Exit codes: 0 success, 1 the API refused the request (or bad usage), 2 the API cannot be
/// reached, 3 the answer is incomplete (some members or regions did not answer; stderr says which).
/// </summary>
public static class BrokerCtl
{
    public const string DefaultEndpoint = "http://127.0.0.1:9080";
    public const int ExitRefused = 1;
    public const int ExitUnreachable = 2;
    public const int ExitIncomplete = 3;

    public static Task<int> Main(string[] args) => RunAsync(args, System.Console.Out, System.Console.Error);

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct = default)
    {
        var endpoint = new Option<string>("--endpoint", "-e")
        {
            Description = "Admin API of any broker node (env BROKERCTL_ENDPOINT)",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BROKERCTL_ENDPOINT") is { Length: > 0 } e ? e : DefaultEndpoint,
        };
        var token = new Option<string?>("--token")
        {
            Description = "Bearer token of the admin API, broker.admin.token (env BROKERCTL_TOKEN, or BROKERCTL_TOKEN_FILE naming a file that holds it)",
            Recursive = true,
            DefaultValueFactory = _ => TokenFromEnvironment(),
        };
        var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of tables (streams: one JSON object per line)", Recursive = true };
        var address = new Argument<string>("address") { Description = "Cluster member address, e.g. akka.tcp://broker@10.0.0.1:4053" };
        var type = new Argument<string>("type") { Description = "Shard region type name (see `sharding regions`), e.g. topic" };
        var name = new Argument<string>("name") { Description = "Topic name" };
        var level = new Argument<string>("level") { Description = "trace, debug, information, warning, error, critical, none, or default (the configured levels)" };
        var lines = new Option<int>("--lines", "-n") { Description = "How many recent lines", DefaultValueFactory = _ => 50 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new lines until Ctrl+C" };

        var root = new RootCommand("brokerctl: operate a broker cluster through a node's admin API");
        root.Options.Add(endpoint);
        root.Options.Add(token);
        root.Options.Add(json);

        Command Verb(string verbName, string description, Func<AdminCall, Task<int>> run, params Symbol[] symbols)
        {
            var c = new Command(verbName, description);
            foreach (var s in symbols)
            {
                if (s is Argument a) c.Arguments.Add(a);
                else if (s is Option o) c.Options.Add(o);
            }
            c.SetAction((pr, cancel) => run(new AdminCall(pr, pr.GetValue(endpoint)!, pr.GetValue(token), pr.GetValue(json), stdout, stderr, cancel)));
            return c;
        }

        static string Escaped(AdminCall c, Argument<string> a) => Uri.EscapeDataString(c.Parse.GetValue(a)!);

        var cluster = new Command("cluster", "Cluster membership");
        cluster.Subcommands.Add(Verb("show", "List the members: status, roles, reachability, leader", c => c.Get("/admin/cluster", Views.Cluster)));
        cluster.Subcommands.Add(Verb("status", "This node's view: self, its status, leader, members by status, reachable and unreachable", c => c.Get("/admin/cluster", Views.Status)));
        cluster.Subcommands.Add(Verb("leader", "The cluster leader as this node sees it (exit 1 when there is none)", c => c.Get("/admin/cluster", Views.Leader, Views.NoLeader)));
        cluster.Subcommands.Add(Verb("tail", "Print member and reachability events as they happen (the current members first) until Ctrl+C",
            c => c.Stream("/admin/cluster/events", Views.ClusterEvent)));
        cluster.Subcommands.Add(Verb("join", "Make the node at --endpoint, not yet in a cluster, join the cluster of the member at <address>",
            c => c.Post("/admin/cluster/join", new JsonObject { ["address"] = c.Parse.GetValue(address) }, Views.Result), address));
        cluster.Subcommands.Add(Verb("leave", "Make a member leave the cluster gracefully (shards are handed off)",
            c => c.Post("/admin/cluster/leave", new JsonObject { ["address"] = c.Parse.GetValue(address) }, Views.Result), address));
        cluster.Subcommands.Add(Verb("down", "Mark a member down (it is removed without a hand-off)",
            c => c.Post("/admin/cluster/down", new JsonObject { ["address"] = c.Parse.GetValue(address) }, Views.Result), address));
        cluster.Subcommands.Add(Verb("down-unreachable", "Mark every unreachable member down",
            c => c.Post("/admin/cluster/down-unreachable", new JsonObject(), Views.Downed)));
        root.Subcommands.Add(cluster);

        var sharding = new Command("sharding", "Cluster sharding");
        sharding.Subcommands.Add(Verb("regions", "List the shard region types", c => c.Get("/admin/sharding/regions", Views.Regions)));
        sharding.Subcommands.Add(Verb("region-stats", "Shards and entities per node of a region type (every member's region asked; exit 3 when some did not answer)",
            c => c.Get($"/admin/sharding/{Escaped(c, type)}/region-stats", Views.RegionStats), type));
        sharding.Subcommands.Add(Verb("shard-stats", "Entities per shard of a region type (exit 3 when some regions did not answer)",
            c => c.Get($"/admin/sharding/{Escaped(c, type)}/shard-stats", Views.ShardStats), type));
        root.Subcommands.Add(sharding);

        var topics = new Command("topics", "Topics read by the nodes");
        topics.Subcommands.Add(Verb("list", "Topics with local subscribers per node and their Kafka topic", c => c.Get("/admin/topics", Views.Topics)));
        root.Subcommands.Add(topics);
        var topic = new Command("topic", "One topic");
        topic.Subcommands.Add(Verb("show", "A topic's Kafka topic, the node that owns its writer (shard and state) and its subscribers per node",
            c => c.Get($"/admin/topics/{Escaped(c, name)}", Views.Topic), name));
        var readOnly = new Argument<bool>("read-only") { Description = "true: WebSocket clients may not publish (records from Kafka producers are still delivered); false: they may" };
        topic.Subcommands.Add(Verb("settings", "A topic's run-time settings (persisted; they survive restarts of the cluster)",
            c => c.Get($"/admin/topics/{Escaped(c, name)}/settings", Views.Settings), name));
        topic.Subcommands.Add(Verb("set-read-only", "Make a topic read-only for WebSocket publishers, or writable again",
            c => c.Put($"/admin/topics/{Escaped(c, name)}/settings", new JsonObject { ["readOnly"] = c.Parse.GetValue(readOnly) }, Views.Settings), name, readOnly));
        root.Subcommands.Add(topic);

        root.Subcommands.Add(Verb("connections", "WebSocket connections per node", c => c.Get("/admin/connections", Views.Connections)));

        var node = new Command("node", "One node");
        node.Subcommands.Add(Verb("drain", "Close the node's WebSockets with 1001 (clients reconnect elsewhere) and refuse new ones",
            c => c.Post("/admin/nodes/drain", new JsonObject { ["address"] = c.Parse.GetValue(address) }, Views.Drained), address));
        root.Subcommands.Add(node);

        var log = new Command("log", "The log of the node at --endpoint");
        log.Subcommands.Add(Verb("tail", "Recent log lines from the node's memory (-n), and with --follow new ones until Ctrl+C",
            c => c.Parse.GetValue(follow)
                ? c.Stream($"/admin/log/stream?lines={c.Parse.GetValue(lines)}", Views.LogLine)
                : c.Get($"/admin/log?lines={c.Parse.GetValue(lines)}", Views.LogLines),
            lines, follow));
        log.Subcommands.Add(Verb("set-level", "Change the node's minimum log level now (Microsoft.Extensions.Logging and Akka); `default` restores the configured levels",
            c => c.Put("/admin/log/level", new JsonObject { ["level"] = c.Parse.GetValue(level) }, Views.LogLevel), level));
        log.Subcommands.Add(Verb("level", "The node's current minimum log level", c => c.Get("/admin/log/level", Views.LogLevel)));
        root.Subcommands.Add(log);

        var parsed = root.Parse(args);
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, ct);
    }

    /// <summary>BROKERCTL_TOKEN, else the contents of the file BROKERCTL_TOKEN_FILE names (a Docker secret).</summary>
    private static string? TokenFromEnvironment()
    {
        if (Environment.GetEnvironmentVariable("BROKERCTL_TOKEN") is { Length: > 0 } t) return t;
        if (Environment.GetEnvironmentVariable("BROKERCTL_TOKEN_FILE") is not { Length: > 0 } file) return null;
        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No token then: a node that needs one answers 401, and brokerctl says how to pass it.
            System.Console.Error.WriteLine($"warning: BROKERCTL_TOKEN_FILE={file} cannot be read ({e.Message})");
            return null;
        }
    }
}
