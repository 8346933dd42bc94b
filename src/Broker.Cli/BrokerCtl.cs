using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Broker.Cli;

/// <summary>
/// brokerctl: the operator's CLI over a broker node's admin HTTP API (<c>broker.admin</c>).
/// Verbs follow Petabridge.Cmd (cluster show, cluster leave, sharding region-stats, ...) plus
/// the broker's own (topics list, topic show, connections, node drain).
/// Exit codes: 0 success, 1 the API refused the request (or bad usage), 2 the API cannot be reached.
/// </summary>
public static class BrokerCtl
{
    public const string DefaultEndpoint = "http://127.0.0.1:9080";
    public const int ExitRefused = 1;
    public const int ExitUnreachable = 2;

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
            Description = "Bearer token of the admin API, broker.admin.token (env BROKERCTL_TOKEN)",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BROKERCTL_TOKEN"),
        };
        var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of tables", Recursive = true };
        var address = new Argument<string>("address") { Description = "Cluster member address, e.g. akka.tcp://broker@10.0.0.1:4053" };
        var type = new Argument<string>("type") { Description = "Shard region type name (see `sharding regions`), e.g. topic" };
        var name = new Argument<string>("name") { Description = "Topic name" };

        var root = new RootCommand("brokerctl: operate a broker cluster through a node's admin API");
        root.Options.Add(endpoint);
        root.Options.Add(token);
        root.Options.Add(json);

        Command Verb(string verbName, string description, Func<Context, Task<int>> run, params Argument[] arguments)
        {
            var c = new Command(verbName, description);
            foreach (var a in arguments) c.Arguments.Add(a);
            c.SetAction((pr, token2) => run(new Context(pr, pr.GetValue(endpoint)!, pr.GetValue(token), pr.GetValue(json), stdout, stderr, token2)));
            return c;
        }

        var cluster = new Command("cluster", "Cluster membership");
        cluster.Subcommands.Add(Verb("show", "List the members: status, roles, reachability, leader", c => c.Get("/admin/cluster", ShowCluster)));
        cluster.Subcommands.Add(Verb("status", "This node's view: self, its status, leader, member counts", c => c.Get("/admin/cluster", ShowStatus)));
        cluster.Subcommands.Add(Verb("leave", "Make a member leave the cluster gracefully (shards are handed off)",
            c => c.Post("/admin/cluster/leave", new JsonObject { ["address"] = c.Parse.GetValue(address) }, ShowResult), address));
        cluster.Subcommands.Add(Verb("down", "Mark a member down (it is removed without a hand-off)",
            c => c.Post("/admin/cluster/down", new JsonObject { ["address"] = c.Parse.GetValue(address) }, ShowResult), address));
        cluster.Subcommands.Add(Verb("down-unreachable", "Mark every unreachable member down",
            c => c.Post("/admin/cluster/down-unreachable", new JsonObject(), ShowDowned)));
        root.Subcommands.Add(cluster);

        var sharding = new Command("sharding", "Cluster sharding");
        sharding.Subcommands.Add(Verb("regions", "List the shard region types", c => c.Get("/admin/sharding/regions", ShowRegions)));
        sharding.Subcommands.Add(Verb("region-stats", "Shards and entities per node of a region type",
            c => c.Get($"/admin/sharding/{Uri.EscapeDataString(c.Parse.GetValue(type)!)}/region-stats", ShowRegionStats), type));
        sharding.Subcommands.Add(Verb("shard-stats", "Entities per shard of a region type",
            c => c.Get($"/admin/sharding/{Uri.EscapeDataString(c.Parse.GetValue(type)!)}/shard-stats", ShowShardStats), type));
        root.Subcommands.Add(sharding);

        var topics = new Command("topics", "Topics read by the nodes");
        topics.Subcommands.Add(Verb("list", "Topics with local subscribers per node and their Kafka topic", c => c.Get("/admin/topics", ShowTopics)));
        root.Subcommands.Add(topics);
        var topic = new Command("topic", "One topic");
        topic.Subcommands.Add(Verb("show", "A topic's Kafka topic and subscribers per node",
            c => c.Get($"/admin/topics/{Uri.EscapeDataString(c.Parse.GetValue(name)!)}", ShowTopic), name));
        var readOnly = new Argument<bool>("read-only") { Description = "true: WebSocket clients may not publish (records from Kafka producers are still delivered); false: they may" };
        topic.Subcommands.Add(Verb("settings", "A topic's run-time settings (persisted; they survive restarts of the cluster)",
            c => c.Get($"/admin/topics/{Uri.EscapeDataString(c.Parse.GetValue(name)!)}/settings", ShowSettings), name));
        topic.Subcommands.Add(Verb("set-read-only", "Make a topic read-only for WebSocket publishers, or writable again",
            c => c.Put($"/admin/topics/{Uri.EscapeDataString(c.Parse.GetValue(name)!)}/settings", new JsonObject { ["readOnly"] = c.Parse.GetValue(readOnly) }, ShowSettings), name, readOnly));
        root.Subcommands.Add(topic);

        root.Subcommands.Add(Verb("connections", "WebSocket connections per node", c => c.Get("/admin/connections", ShowConnections)));

        var node = new Command("node", "One node");
        node.Subcommands.Add(Verb("drain", "Close the node's WebSockets with 1001 (clients reconnect elsewhere) and refuse new ones",
            c => c.Post("/admin/nodes/drain", new JsonObject { ["address"] = c.Parse.GetValue(address) }, ShowDrained), address));
        root.Subcommands.Add(node);

        var parsed = root.Parse(args);
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, ct);
    }

    private sealed record Context(ParseResult Parse, string Endpoint, string? Token, bool Json, TextWriter Out, TextWriter Err, CancellationToken Cancel)
    {
        public Task<int> Get(string path, Action<IAnsiConsole, JsonNode> show) => Send(HttpMethod.Get, path, null, show);

        public Task<int> Post(string path, JsonNode body, Action<IAnsiConsole, JsonNode> show) => Send(HttpMethod.Post, path, body, show);

        public Task<int> Put(string path, JsonNode body, Action<IAnsiConsole, JsonNode> show) => Send(HttpMethod.Put, path, body, show);

        private async Task<int> Send(HttpMethod method, string path, JsonNode? body, Action<IAnsiConsole, JsonNode> show)
        {
            if (!Uri.TryCreate(Endpoint.TrimEnd('/') + path, UriKind.Absolute, out var uri))
            {
                await Err.WriteLineAsync($"error: invalid --endpoint '{Endpoint}' (expected e.g. {DefaultEndpoint})");
                return ExitRefused;
            }
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
            using var request = new HttpRequestMessage(method, uri);
            if (!string.IsNullOrEmpty(Token)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
            if (body is not null) request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            HttpResponseMessage response;
            string text;
            try
            {
                response = await http.SendAsync(request, Cancel);
                text = await response.Content.ReadAsStringAsync(Cancel);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !Cancel.IsCancellationRequested)
            {
                await Err.WriteLineAsync($"cannot reach the broker admin API at {Endpoint}: {e.Message}");
                await Err.WriteLineAsync("Is the node running, and is --endpoint (env BROKERCTL_ENDPOINT) its broker.admin host and port?");
                return ExitUnreachable;
            }
            using (response)
            {
                JsonNode? node = null;
                try { node = JsonNode.Parse(text); } catch (JsonException) { /* not JSON */ }
                if (!response.IsSuccessStatusCode)
                {
                    var message = node?["error"]?.GetValue<string>() ?? (text.Length > 0 ? text : response.ReasonPhrase);
                    await Err.WriteLineAsync($"error: {(int)response.StatusCode} {message}");
                    if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized)
                        await Err.WriteLineAsync("The admin API needs a token: pass --token (env BROKERCTL_TOKEN).");
                    return ExitRefused;
                }
                if (node is null)
                {
                    await Err.WriteLineAsync($"error: {Endpoint} answered with something that is not JSON; is it a broker admin port?");
                    return ExitRefused;
                }
                if (Json)
                {
                    await Out.WriteLineAsync(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                }
                else
                {
                    show(MakeConsole(Out), node);
                }
                if (node["errors"] is JsonArray { Count: > 0 } errors)
                {
                    foreach (var e in errors) await Err.WriteLineAsync($"warning: {e}");
                }
                return 0;
            }
        }
    }

    private static IAnsiConsole MakeConsole(TextWriter writer)
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

    private static string S(JsonNode? n) => n switch
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

    private static void ShowCluster(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Address", "Status", "Roles", "Reachable", "Leader", "Self");
        foreach (var m in Items(n["members"]))
        {
            t.AddRow(T(S(m["address"])), T(S(m["status"])), T(string.Join(",", Items(m["roles"]).Select(S))),
                T(S(m["reachable"]) == "true" ? "yes" : "NO"), T(S(m["leader"]) == "true" ? "*" : ""), T(S(m["self"]) == "true" ? "*" : ""));
        }
        console.Write(t);
        console.WriteLine($"{Items(n["members"]).Count()} members, leader {S(n["leader"])}");
    }

    private static void ShowStatus(IAnsiConsole console, JsonNode n)
    {
        var members = Items(n["members"]).ToList();
        var grid = new Grid().AddColumn().AddColumn();
        grid.AddRow(T("Self"), T(S(n["self"])));
        grid.AddRow(T("Status"), T(S(n["selfStatus"])));
        grid.AddRow(T("Leader"), T(S(n["leader"])));
        grid.AddRow(T("Members"), T($"{members.Count} ({members.Count(m => S(m["status"]) == "Up")} Up)"));
        grid.AddRow(T("Unreachable"), T(Items(n["unreachable"]).Count().ToString()));
        console.Write(grid);
    }

    private static void ShowResult(IAnsiConsole console, JsonNode n) => console.WriteLine($"{S(n["address"])}: {S(n["result"])}");

    private static void ShowDowned(IAnsiConsole console, JsonNode n)
    {
        var downed = Items(n["downed"]).Select(S).ToList();
        console.WriteLine(downed.Count == 0 ? "no unreachable members" : $"downed {downed.Count}: {string.Join(", ", downed)}");
    }

    private static void ShowRegions(IAnsiConsole console, JsonNode n)
    {
        foreach (var r in Items(n["regions"])) console.WriteLine(S(r));
    }

    private static void ShowRegionStats(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Address", "Shards", "Entities", "Failed");
        foreach (var r in Items(n["regions"]))
            t.AddRow(T(S(r["address"])), T(S(r["shards"])), T(S(r["entities"])), T(string.Join(",", Items(r["failed"]).Select(S))));
        console.Write(t);
    }

    private static void ShowShardStats(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Address", "Shard", "Entities");
        foreach (var s in Items(n["shards"])) t.AddRow(T(S(s["address"])), T(S(s["shard"])), T(S(s["entities"])));
        console.Write(t);
    }

    private static string PerNode(JsonNode t) => string.Join(", ", Items(t["nodes"]).Select(x => $"{S(x["address"])}={S(x["subscribers"])}"));

    private static void ShowTopics(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Topic", "Kafka topic", "Subscribers", "Per node");
        foreach (var topic in Items(n["topics"])) t.AddRow(T(S(topic["topic"])), T(S(topic["kafkaTopic"])), T(S(topic["subscribers"])), T(PerNode(topic)));
        console.Write(t);
    }

    private static void ShowSettings(IAnsiConsole console, JsonNode n)
    {
        var grid = new Grid().AddColumn().AddColumn();
        grid.AddRow(T("Topic"), T(S(n["topic"])));
        grid.AddRow(T("Read-only"), T((bool?)n["readOnly"] == true ? "yes" : "no"));
        console.Write(grid);
    }

    private static void ShowTopic(IAnsiConsole console, JsonNode n)
    {
        var grid = new Grid().AddColumn().AddColumn();
        grid.AddRow(T("Topic"), T(S(n["topic"])));
        grid.AddRow(T("Kafka topic"), T(S(n["kafkaTopic"])));
        grid.AddRow(T("Subscribers"), T(S(n["subscribers"])));
        console.Write(grid);
        var t = NewTable("Address", "Subscribers");
        foreach (var x in Items(n["nodes"])) t.AddRow(T(S(x["address"])), T(S(x["subscribers"])));
        console.Write(t);
    }

    private static void ShowConnections(IAnsiConsole console, JsonNode n)
    {
        var t = NewTable("Address", "Connections", "Draining");
        foreach (var x in Items(n["nodes"])) t.AddRow(T(S(x["address"])), T(S(x["connections"])), T(S(x["draining"]) == "true" ? "yes" : ""));
        console.Write(t);
        console.WriteLine($"total {S(n["total"])}");
    }

    private static void ShowDrained(IAnsiConsole console, JsonNode n) =>
        console.WriteLine($"{S(n["address"])}: drained, {S(n["closed"])} connections closed, {S(n["remaining"])} still open");
}
