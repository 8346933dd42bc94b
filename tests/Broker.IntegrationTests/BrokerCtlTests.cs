using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Akka.Actor;
using Broker.Cli;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>
/// Three nodes whose log shows ASP.NET Core's request and routing lines, which the log tests watch:
/// request logging on, and ASP.NET Core not among the quiet categories (the defaults keep both out).
/// </summary>
public sealed class BrokerCtlFixture : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(3, new Dictionary<string, string>
    {
        ["broker.logging.requests"] = "on",
        ["broker.logging.quiet"] = "Akka.Remote,Akka.Cluster.Sharding,Akka.Cluster.Tools,Akka.Cluster.SBR,Akka.Actor.CoordinatedShutdown,Microsoft.Hosting.Lifetime",
    });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>brokerctl, run in-process with captured output, against the admin API of a real three-node cluster.</summary>
public sealed class BrokerCtlTests(BrokerCtlFixture fixture) : IClassFixture<BrokerCtlFixture>
{
    private TestCluster Cluster => fixture.Cluster;

    internal static async Task<(int Exit, string Out, string Err)> Ctl(string endpoint, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var exit = await BrokerCtl.RunAsync(["--endpoint", endpoint, .. args], stdout, stderr).WaitAsync(TimeSpan.FromSeconds(60));
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private static async Task<JsonNode> CtlJson(string endpoint, params string[] args)
    {
        var (exit, output, error) = await Ctl(endpoint, [.. args, "--json"]);
        Assert.True(exit == 0, $"exit {exit}: {error}");
        return JsonNode.Parse(output)!;
    }

    [Fact]
    public async Task Cluster_show_lists_the_three_members_up_as_a_table_and_as_json()
    {
        var admin = Cluster.Nodes[1].AdminAddress;
        var (exit, output, error) = await Ctl(admin, "cluster", "show");
        Assert.True(exit == 0, error);
        foreach (var node in Cluster.Nodes) Assert.Contains(node.ClusterAddress, output);
        Assert.Equal(3, output.Split('\n').Count(l => l.Contains(" Up ")));

        var json = await CtlJson(admin, "cluster", "show");
        var members = json["members"]!.AsArray();
        Assert.Equal(3, members.Count);
        Assert.All(members, m => Assert.Equal("Up", (string?)m!["status"]));
        Assert.All(members, m => Assert.True((bool)m!["reachable"]!));
        Assert.Equal(Cluster.Nodes[1].ClusterAddress, (string?)json["self"]);
        Assert.Contains((string?)json["leader"], Cluster.Nodes.Select(n => n.ClusterAddress));

        (exit, output, error) = await Ctl(admin, "cluster", "status");
        Assert.True(exit == 0, error);
        Assert.Contains("3 (3 Up)", output);
        Assert.Matches(@"(?m)^Reachable +3 *$", output);
        Assert.Matches(@"(?m)^Unreachable +0 *$", output);
    }

    [Fact]
    public async Task Cluster_leader_prints_the_leader_every_node_agrees_on()
    {
        var leaders = new List<string>();
        foreach (var node in Cluster.Nodes)
        {
            var (exit, output, error) = await Ctl(node.AdminAddress, "cluster", "leader");
            Assert.True(exit == 0, error);
            leaders.Add(output.Trim());
        }
        Assert.Single(leaders.Distinct());
        Assert.Contains(leaders[0], Cluster.Nodes.Select(n => n.ClusterAddress));
        var json = await CtlJson(Cluster.Nodes[0].AdminAddress, "cluster", "show");
        Assert.Equal(leaders[0], (string?)json["leader"]);
    }

    [Fact]
    public async Task Topic_show_names_the_node_that_owns_the_topics_writer()
    {
        const string topic = "ctl.owner";
        var admin = Cluster.Nodes[2].AdminAddress;
        var before = await CtlJson(admin, "topic", "show", topic);
        Assert.Equal("not started", (string?)before["writer"]!["state"]);
        Assert.Null(before["writer"]!["owner"]);

        await using (var c = await Cluster.Nodes[0].ConnectAsync()) await c.PublishAsync(topic, new { n = 1 }, "p1");

        // The truth, from each node's own region: which one hosts the topic's entity.
        var owners = new List<string>();
        foreach (var node in Cluster.Nodes)
        {
            var system = node.App.Services.GetRequiredService<Akka.Actor.ActorSystem>();
            var state = await Akka.Cluster.Sharding.ClusterSharding.Get(system).ShardRegion("topic")
                .Ask<Akka.Cluster.Sharding.CurrentShardRegionState>(Akka.Cluster.Sharding.GetShardRegionState.Instance, TimeSpan.FromSeconds(10));
            if (state.Shards.Any(s => s.EntityIds.Contains(topic))) owners.Add(node.ClusterAddress);
        }
        var owner = Assert.Single(owners);

        foreach (var node in Cluster.Nodes)
        {
            var json = await CtlJson(node.AdminAddress, "topic", "show", topic);
            Assert.Equal(owner, (string?)json["writer"]!["owner"]);
            Assert.Equal("running", (string?)json["writer"]!["state"]);
            Assert.NotEmpty((string?)json["writer"]!["shard"] ?? "");
        }
        var (exit, output, error) = await Ctl(admin, "topic", "show", topic);
        Assert.True(exit == 0, error);
        Assert.Matches($@"(?m)^Owner +{Regex.Escape(owner)} *$", output);
        Assert.Matches(@"(?m)^Writer +running on the owner *$", output);
    }

    [Fact]
    public async Task Log_set_level_changes_what_the_node_logs_and_log_tail_shows_its_recent_lines()
    {
        var node = Cluster.Nodes[1];
        using var http = new HttpClient();
        try
        {
            var (exit, output, error) = await Ctl(node.AdminAddress, "log", "set-level", "debug");
            Assert.True(exit == 0, error);
            Assert.Contains("log level Debug (Akka DebugLevel)", output);
            await http.GetStringAsync(node.HttpAddress + "/healthz");
            var lines = (await CtlJson(node.AdminAddress, "log", "tail", "-n", "200"))["lines"]!.AsArray();
            // ASP.NET Core's routing logs the match at Debug: visible now.
            var debug = lines.Where(l => (string?)l!["level"] == "Debug").ToList();
            Assert.Contains(debug, l => ((string?)l!["message"])!.Contains("/healthz"));
            Assert.Equal(lines.Select(l => (long)l!["seq"]!).Order(), lines.Select(l => (long)l!["seq"]!));

            (exit, output, error) = await Ctl(node.AdminAddress, "log", "set-level", "warning");
            Assert.True(exit == 0, error);
            Assert.Contains("log level Warning (Akka WarningLevel)", output);
            // From now on (this tail's own request included) only warnings and errors are kept.
            var last = (await CtlJson(node.AdminAddress, "log", "tail", "-n", "200"))["lines"]!.AsArray().Max(l => (long)l!["seq"]!);
            await http.GetStringAsync(node.HttpAddress + "/healthz");
            var after = (await CtlJson(node.AdminAddress, "log", "tail", "-n", "200"))["lines"]!.AsArray()
                .Where(l => (long)l!["seq"]! > last).ToList();
            Assert.DoesNotContain(after, l => (string?)l!["level"] is "Debug" or "Information");

            // The node has logged far more than 3 lines since it started: -n 3 gives exactly the last 3.
            Assert.Equal(3, (await CtlJson(node.AdminAddress, "log", "tail", "-n", "3"))["lines"]!.AsArray().Count);
            (exit, output, error) = await Ctl(node.AdminAddress, "log", "tail", "-n", "3");
            Assert.True(exit == 0, error);
            // As text, one line each (an exception would add indented lines below its entry).
            Assert.Equal(3, output.Split('\n').Count(l => Regex.IsMatch(l, @"^\d\d:\d\d:\d\d\.\d{3} (trce|dbug|info|warn|fail|crit) ")));

            (exit, _, error) = await Ctl(node.AdminAddress, "log", "set-level", "loud");
            Assert.Equal(BrokerCtl.ExitRefused, exit);
            Assert.Contains("unknown level 'loud'", error);
        }
        finally
        {
            var (exit, output, error) = await Ctl(node.AdminAddress, "log", "set-level", "default");
            Assert.True(exit == 0, error);
            Assert.Contains("log level default (Akka WarningLevel)", output); // the tests run Akka at WARNING
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Log_tail_follow_prints_new_lines_as_they_are_written_until_cancelled()
    {
        var node = Cluster.Nodes[2];
        var output = new LineWriter();
        using var stop = new CancellationTokenSource();
        try
        {
            Assert.Equal(0, (await Ctl(node.AdminAddress, "log", "set-level", "information")).Exit);
            var tail = BrokerCtl.RunAsync(["--endpoint", node.AdminAddress, "log", "tail", "-n", "0", "--follow"], output, new StringWriter(), stop.Token);
            // Requests made while it follows show up as they happen (the first ones may come before
            // the follower is subscribed: keep making them until one is printed).
            using var http = new HttpClient();
            using var requests = new CancellationTokenSource();
            var requesting = Task.Run(async () =>
            {
                for (var i = 0; !requests.IsCancellationRequested; i++)
                {
                    await http.GetStringAsync(node.HttpAddress + $"/healthz?follow-test={i}");
                    await Task.Delay(200);
                }
            });
            var line = await output.WaitForAsync(l => l.Contains("/healthz?follow-test="), TimeSpan.FromSeconds(30), "about a /healthz request");
            Assert.Contains(" info ", line);
            requests.Cancel();
            await requesting;
            stop.Cancel();
            Assert.Equal(0, await tail.WaitAsync(TimeSpan.FromSeconds(20)));
        }
        finally
        {
            await Ctl(node.AdminAddress, "log", "set-level", "default");
        }
    }

    [Fact]
    public async Task Topics_list_and_topic_show_count_subscribers_on_each_node()
    {
        const string topic = "ctl.topics";
        await using var a1 = await Cluster.Nodes[0].ConnectAsync();
        await using var a2 = await Cluster.Nodes[0].ConnectAsync();
        await using var b1 = await Cluster.Nodes[1].ConnectAsync();
        await a1.SubscribeAsync(topic);
        await a2.SubscribeAsync(topic);
        await b1.SubscribeAsync(topic);
        var admin = Cluster.Nodes[2].AdminAddress;

        var json = await CtlJson(admin, "topics", "list");
        var t = json["topics"]!.AsArray().Single(x => (string?)x!["topic"] == topic)!;
        Assert.Equal(3, (int)t["subscribers"]!);
        Assert.Equal(topic, (string?)t["kafkaTopic"]);
        var perNode = t["nodes"]!.AsArray().ToDictionary(x => (string)x!["address"]!, x => (int)x!["subscribers"]!);
        Assert.Equal(2, perNode[Cluster.Nodes[0].ClusterAddress]);
        Assert.Equal(1, perNode[Cluster.Nodes[1].ClusterAddress]);

        var (exit, output, error) = await Ctl(admin, "topics", "list");
        Assert.True(exit == 0, error);
        Assert.Contains(topic, output);

        (exit, output, error) = await Ctl(admin, "topic", "show", topic);
        Assert.True(exit == 0, error);
        Assert.Contains(Cluster.Nodes[0].ClusterAddress, output);
        Assert.Contains(Cluster.Nodes[1].ClusterAddress, output);
        var one = await CtlJson(admin, "topic", "show", topic);
        Assert.Equal(3, (int)one["subscribers"]!);
    }

    [Fact]
    public async Task Connections_counts_websockets_per_node()
    {
        var before = await CtlJson(Cluster.Nodes[0].AdminAddress, "connections");
        int On(JsonNode j, int i) => (int)j["nodes"]!.AsArray().Single(x => (string?)x!["address"] == Cluster.Nodes[i].ClusterAddress)!["connections"]!;
        await using var c1 = await Cluster.Nodes[2].ConnectAsync();
        await using var c2 = await Cluster.Nodes[2].ConnectAsync();
        await c1.SubscribeAsync("ctl.connections");
        await c2.SubscribeAsync("ctl.connections");
        var after = await CtlJson(Cluster.Nodes[0].AdminAddress, "connections");
        Assert.Equal(3, after["nodes"]!.AsArray().Count);
        // Other tests of the class may hold connections too: these two are on node 2 at least.
        Assert.True(On(after, 2) >= 2, after.ToJsonString());
        Assert.True((int)after["total"]! >= 2);
        var (exit, output, error) = await Ctl(Cluster.Nodes[0].AdminAddress, "connections");
        Assert.True(exit == 0, error);
        Assert.Contains("total", output);
        _ = before;
    }

    [Fact]
    public async Task Sharding_verbs_show_the_regions_and_their_shards()
    {
        var admin = Cluster.Nodes[0].AdminAddress;
        await using var c = await Cluster.Nodes[0].ConnectAsync();
        await c.PublishAsync("ctl.sharding", new { n = 1 }, "p1");

        var regions = await CtlJson(admin, "sharding", "regions");
        Assert.Contains("topic", regions["regions"]!.AsArray().Select(r => (string?)r));
        Assert.Contains("session", regions["regions"]!.AsArray().Select(r => (string?)r));

        var stats = await CtlJson(admin, "sharding", "region-stats", "topic");
        Assert.Equal(3, stats["regions"]!.AsArray().Count);
        Assert.Equal(Cluster.Nodes.Select(n => n.ClusterAddress).Order(StringComparer.Ordinal),
            stats["regions"]!.AsArray().Select(r => (string)r!["address"]!).Order(StringComparer.Ordinal));
        Assert.True((bool)stats["complete"]!);
        Assert.Empty(stats["errors"]!.AsArray());
        Assert.True(stats["regions"]!.AsArray().Sum(r => (int)r!["entities"]!) >= 1);

        var shards = await CtlJson(admin, "sharding", "shard-stats", "topic");
        Assert.NotEmpty(shards["shards"]!.AsArray());

        var (exit, output, error) = await Ctl(admin, "sharding", "region-stats", "topic");
        Assert.True(exit == 0, error);
        Assert.Contains("Entities", output);

        (exit, _, error) = await Ctl(admin, "sharding", "region-stats", "no-such-type");
        Assert.Equal(BrokerCtl.ExitRefused, exit);
        Assert.Contains("no-such-type", error);
    }

    [Fact]
    public async Task An_unreachable_endpoint_fails_with_a_clear_message()
    {
        var endpoint = $"http://127.0.0.1:{TestCluster.FreePort()}";
        var (exit, output, error) = await Ctl(endpoint, "cluster", "show");
        Assert.Equal(BrokerCtl.ExitUnreachable, exit);
        Assert.Contains($"cannot reach the broker admin API at {endpoint}", error);
        Assert.Equal("", output);
    }

    [Fact]
    public async Task Help_is_available_on_every_verb()
    {
        foreach (var verb in new[] { new[] { "--help" }, ["cluster", "--help"], ["cluster", "show", "--help"], ["cluster", "leave", "--help"],
                     ["cluster", "down", "--help"], ["cluster", "down-unreachable", "--help"], ["cluster", "status", "--help"],
                     ["sharding", "regions", "--help"], ["sharding", "region-stats", "--help"], ["sharding", "shard-stats", "--help"],
                     ["topics", "list", "--help"], ["topic", "show", "--help"], ["connections", "--help"], ["node", "drain", "--help"],
                     ["cluster", "tail", "--help"], ["cluster", "join", "--help"], ["cluster", "leader", "--help"],
                     ["log", "tail", "--help"], ["log", "set-level", "--help"], ["log", "level", "--help"] })
        {
            var (exit, output, error) = await Ctl("http://127.0.0.1:1", verb);
            Assert.True(exit == 0, $"{string.Join(' ', verb)}: {error}");
            Assert.Contains("Usage:", output);
        }
        var (bad, _, _) = await Ctl("http://127.0.0.1:1", "cluster", "leave");
        Assert.NotEqual(0, bad);
    }

    [Fact]
    public async Task The_admin_api_is_not_served_on_the_websocket_port()
    {
        using var http = new HttpClient();
        var main = await http.GetAsync(Cluster.Nodes[0].HttpAddress + "/admin/cluster");
        Assert.Equal(HttpStatusCode.NotFound, main.StatusCode);
        var admin = await http.GetAsync(Cluster.Nodes[0].AdminAddress + "/admin/cluster");
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
    }
}

/// <summary>Verbs that change the cluster, each on a cluster of its own.</summary>
public sealed class BrokerCtlChangeTests
{
    [Fact]
    public async Task Node_drain_closes_the_nodes_websockets_with_1001_and_clients_reconnect_elsewhere_then_the_node_leaves()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var target = cluster.Nodes[2];
        await using var c1 = await target.ConnectAsync();
        await using var c2 = await target.ConnectAsync();
        await c1.SubscribeAsync("ctl.drain");
        await c2.SubscribeAsync("ctl.drain");
        var admin = cluster.Nodes[0].AdminAddress;

        var (exit, output, error) = await BrokerCtlTests.Ctl(admin, "node", "drain", target.ClusterAddress);
        Assert.True(exit == 0, error);
        Assert.Contains("2 connections closed", output);
        foreach (var c in new[] { c1, c2 })
        {
            var closed = await c.Closed.WaitAsync(WsClient.DefaultTimeout);
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, closed.Status); // 1001
        }
        await Assert.ThrowsAnyAsync<WebSocketException>(() => target.ConnectAsync());
        await using (var elsewhere = await cluster.Nodes[1].ConnectAsync())
            await elsewhere.SubscribeAsync("ctl.drain");

        var connections = await BrokerCtlTests.Ctl(admin, "connections", "--json");
        var drained = JsonNode.Parse(connections.Out)!["nodes"]!.AsArray().Single(n => (string?)n!["address"] == target.ClusterAddress)!;
        Assert.True((bool)drained["draining"]!);

        (exit, output, error) = await BrokerCtlTests.Ctl(admin, "cluster", "leave", target.ClusterAddress);
        Assert.True(exit == 0, error);
        Assert.Contains("leaving", output);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var (_, json, _) = await BrokerCtlTests.Ctl(admin, "cluster", "show", "--json");
            var members = JsonNode.Parse(json)!["members"]!.AsArray();
            if (members.Count == 2 && members.All(m => (string?)m!["address"] != target.ClusterAddress)) break;
            Assert.True(DateTime.UtcNow < deadline, "the node did not leave: " + json);
            await Task.Delay(200);
        }

        (exit, _, error) = await BrokerCtlTests.Ctl(admin, "cluster", "down", "akka.tcp://broker@127.0.0.1:1");
        Assert.Equal(BrokerCtl.ExitRefused, exit);
        Assert.Contains("404", error);
    }

    [Fact(Timeout = 240_000)]
    public async Task Cluster_tail_streams_a_node_joining_with_cluster_join_and_a_member_leaving()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var admin = cluster.Nodes[0].AdminAddress;
        var output = new LineWriter();
        var errors = new StringWriter();
        using var stop = new CancellationTokenSource();
        var tail = BrokerCtl.RunAsync(["--endpoint", admin, "cluster", "tail"], output, errors, stop.Token);

        // The current members first, as events.
        foreach (var node in cluster.Nodes)
            await output.WaitForAsync(l => l.Contains(" MemberUp ") && l.Contains(node.ClusterAddress), TimeSpan.FromSeconds(30), $"MemberUp {node.ClusterAddress}");

        // A fourth node that starts in no cluster (no seeds, self-join off) and is told to join.
        var newcomer = await TestBroker.StartAsync(cluster.NodeSettings(TestCluster.FreePort(), new Dictionary<string, string>
        {
            ["broker.cluster.seed-nodes"] = "",
            ["broker.cluster.self-join"] = "off",
        }));
        cluster.Nodes.Add(newcomer);
        var (exit, result, error) = await BrokerCtlTests.Ctl(newcomer.AdminAddress, "cluster", "leader");
        Assert.Equal(BrokerCtl.ExitRefused, exit);
        Assert.Contains("sees no leader", error);
        (exit, result, error) = await BrokerCtlTests.Ctl(newcomer.AdminAddress, "cluster", "join", cluster.Nodes[1].ClusterAddress);
        Assert.True(exit == 0, error);
        Assert.Contains("joining", result);
        await output.WaitForAsync(l => l.Contains(" MemberUp ") && l.Contains(newcomer.ClusterAddress), TimeSpan.FromSeconds(60), $"MemberUp {newcomer.ClusterAddress}");
        (exit, result, error) = await BrokerCtlTests.Ctl(newcomer.AdminAddress, "cluster", "join", cluster.Nodes[1].ClusterAddress);
        Assert.True(exit == 0, error);
        Assert.Contains("already a member of that cluster", result);
        // A member of a cluster cannot join another one: said, not silently ignored.
        (exit, _, error) = await BrokerCtlTests.Ctl(newcomer.AdminAddress, "cluster", "join", "akka.tcp://broker@127.0.0.1:1");
        Assert.Equal(BrokerCtl.ExitRefused, exit);
        Assert.Contains("409", error);
        Assert.Contains("already a member of a cluster", error);

        // A member leaves: Left, Exited, Removed as they happen.
        var leaving = cluster.Nodes[2].ClusterAddress;
        (exit, _, error) = await BrokerCtlTests.Ctl(admin, "cluster", "leave", leaving);
        Assert.True(exit == 0, error);
        await output.WaitForAsync(l => l.Contains(" MemberLeft ") && l.Contains(leaving), TimeSpan.FromSeconds(60), $"MemberLeft {leaving}");
        await output.WaitForAsync(l => l.Contains(" MemberRemoved ") && l.Contains(leaving) && l.Contains("(was Exiting)"), TimeSpan.FromSeconds(60), $"MemberRemoved {leaving}");

        stop.Cancel();
        Assert.Equal(0, await tail.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("", errors.ToString());
    }

    [Fact]
    public async Task A_crashed_node_shows_unreachable_and_down_unreachable_removes_it()
    {
        // The split-brain resolver must not act first; a terminated actor system must not leave.
        await using var cluster = await TestCluster.StartAsync(3, new Dictionary<string, string>
        {
            ["broker.cluster.split-brain-resolver.stable-after"] = "5m",
            ["akka.coordinated-shutdown.run-by-actor-system-terminate"] = "off",
        });
        var victim = cluster.Nodes[2];
        var victimAddress = victim.ClusterAddress;
        var admin = cluster.Nodes[0].AdminAddress;
        var events = new LineWriter();
        using var stopTail = new CancellationTokenSource();
        var tail = BrokerCtl.RunAsync(["--endpoint", admin, "cluster", "tail"], events, new StringWriter(), stopTail.Token);
        await events.WaitForAsync(l => l.Contains(" MemberUp ") && l.Contains(victimAddress), TimeSpan.FromSeconds(30), "MemberUp of the victim");
        await victim.App.Services.GetRequiredService<Akka.Actor.ActorSystem>().Terminate().WaitAsync(TimeSpan.FromSeconds(30));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var (_, json, _) = await BrokerCtlTests.Ctl(admin, "cluster", "show", "--json");
            var node = JsonNode.Parse(json)!;
            if (node["unreachable"]!.AsArray().Any(a => (string?)a == victimAddress)) break;
            Assert.True(DateTime.UtcNow < deadline, "the node was not seen unreachable: " + json);
            await Task.Delay(200);
        }
        var (exit, output, error) = await BrokerCtlTests.Ctl(admin, "cluster", "show");
        Assert.True(exit == 0, error);
        Assert.Contains(output.Split('\n'), l => l.Contains(victimAddress) && l.Contains("NO"));
        await events.WaitForAsync(l => l.Contains(" UnreachableMember ") && l.Contains(victimAddress), TimeSpan.FromSeconds(30), "UnreachableMember of the victim");

        // cluster status counts what cluster show lists: three members, two reachable, the victim not.
        (exit, output, error) = await BrokerCtlTests.Ctl(admin, "cluster", "status");
        Assert.True(exit == 0, error);
        Assert.Contains("3 (3 Up)", output);
        Assert.Matches(@"(?m)^Reachable +2 *$", output);
        Assert.Matches($@"(?m)^Unreachable +1: {System.Text.RegularExpressions.Regex.Escape(victimAddress)} *$", output);

        // region-stats never shows a partial table as if all were well: the missing region is named, exit 3.
        (exit, output, error) = await BrokerCtlTests.Ctl(admin, "sharding", "region-stats", "topic");
        Assert.Equal(BrokerCtl.ExitIncomplete, exit);
        Assert.Contains("INCOMPLETE", error);
        Assert.Contains($"{victimAddress}: the topic region did not answer", error);
        Assert.Contains("unreachable", error);
        Assert.Contains(cluster.Nodes[0].ClusterAddress, output);
        Assert.Contains(cluster.Nodes[1].ClusterAddress, output);
        Assert.DoesNotContain(victimAddress, output);
        var stats = JsonNode.Parse((await BrokerCtlTests.Ctl(admin, "sharding", "region-stats", "topic", "--json")).Out)!;
        Assert.False((bool)stats["complete"]!);
        Assert.Equal(2, stats["regions"]!.AsArray().Count);
        (exit, _, error) = await BrokerCtlTests.Ctl(admin, "sharding", "shard-stats", "topic");
        Assert.Equal(BrokerCtl.ExitIncomplete, exit);
        Assert.Contains(victimAddress, error);

        (exit, output, error) = await BrokerCtlTests.Ctl(admin, "cluster", "down-unreachable");
        Assert.True(exit == 0, error);
        Assert.Contains(victimAddress, output);
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var (_, json, _) = await BrokerCtlTests.Ctl(admin, "cluster", "show", "--json");
            var members = JsonNode.Parse(json)!["members"]!.AsArray();
            if (members.Count == 2 && members.All(m => (string?)m!["address"] != victimAddress)) break;
            Assert.True(DateTime.UtcNow < deadline, "the node was not removed: " + json);
            await Task.Delay(200);
        }
        await events.WaitForAsync(l => l.Contains(" MemberRemoved ") && l.Contains(victimAddress) && l.Contains("(was Down)"), TimeSpan.FromSeconds(30), "MemberRemoved of the victim");
        (exit, _, error) = await BrokerCtlTests.Ctl(admin, "sharding", "region-stats", "topic");
        Assert.True(exit == 0, error);
        stopTail.Cancel();
        Assert.Equal(0, await tail.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task With_a_token_the_admin_api_answers_401_without_it()
    {
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string> { ["broker.admin.token"] = "s3cret" });
        var (exit, _, error) = await BrokerCtlTests.Ctl(broker.AdminAddress, "cluster", "show");
        Assert.Equal(BrokerCtl.ExitRefused, exit);
        Assert.Contains("401", error);
        (exit, var output, error) = await BrokerCtlTests.Ctl(broker.AdminAddress, "cluster", "show", "--token", "s3cret");
        Assert.True(exit == 0, error);
        Assert.Contains(broker.ClusterAddress, output);
    }

    [Fact]
    public async Task The_admin_token_can_come_from_a_file_and_an_unreadable_file_is_refused_at_start()
    {
        var file = Path.Combine(Path.GetTempPath(), $"broker-admin-token-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(file, "from-a-file\n");
        try
        {
            await using var broker = await TestBroker.StartAsync(new Dictionary<string, string> { ["broker.admin.token-file"] = file });
            var (exit, _, error) = await BrokerCtlTests.Ctl(broker.AdminAddress, "cluster", "show");
            Assert.Equal(BrokerCtl.ExitRefused, exit);
            Assert.Contains("401", error);
            (exit, _, error) = await BrokerCtlTests.Ctl(broker.AdminAddress, "cluster", "show", "--token", "from-a-file");
            Assert.True(exit == 0, error);
        }
        finally
        {
            File.Delete(file);
        }
        var e = await Assert.ThrowsAsync<Broker.Core.Settings.SettingsException>(() =>
            TestBroker.StartAsync(new Dictionary<string, string> { ["broker.admin.token-file"] = file }));
        Assert.Equal("broker.admin.token-file", e.Key);
        Assert.Contains(file, e.Message);
    }
}

/// <summary>brokerctl without an alias: the wrapper script builds it if needed and runs it.</summary>
public sealed class BrokerCtlScriptTests
{
    [Fact(Timeout = 240_000)]
    public async Task Scripts_brokerctl_runs_brokerctl_against_a_node()
    {
        await using var broker = await TestBroker.StartAsync();
        var root = Repository.Root();
        var (exit, output, error) = await Command.RunAsync("bash", ["scripts/brokerctl", "--endpoint", broker.AdminAddress, "cluster", "show", "--json"],
            root, TimeSpan.FromSeconds(180));
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.Equal(broker.ClusterAddress, (string?)JsonNode.Parse(output)!["self"]);

        // From another directory too (the script finds the repository from its own path).
        (exit, output, error) = await Command.RunAsync("bash", [Path.Combine(root, "scripts", "brokerctl"), "--help"], Path.GetTempPath(), TimeSpan.FromSeconds(180));
        Assert.True(exit == 0, $"exit {exit}: {error}");
        Assert.Contains("cluster", output);
        Assert.Contains("log", output);
    }
}

