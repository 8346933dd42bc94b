using Broker.Core.Topics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Broker.Core.Admin;
using Broker.Core.Settings;
using Broker.Protocol;
using Broker.Server.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Broker.Server.Admin;

/// <summary>The two listeners of a node: the main port (WebSockets, metrics, health) and the admin port.</summary>
public sealed class BrokerEndpoints
{
    public ListenOptions? Main { get; set; }
    public ListenOptions? Admin { get; set; }
    /// <summary>Whether the main listener serves TLS (wss://, https://).</summary>
    public bool MainTls { get; set; }

    /// <summary>The bound port of a listener (the real one after start, also with port 0).</summary>
    public static int Port(ListenOptions? o) => (o?.EndPoint as IPEndPoint)?.Port ?? -1;

    public static string Url(ListenOptions? o) => o?.EndPoint is IPEndPoint ip ? $"http://{ip}" : "";
}

/// <summary>
/// The admin HTTP API, served only on the admin port (<c>broker.admin</c>): cluster membership,
/// sharding, topics and connections of every node, drain. JSON in and out; a bearer token when
/// <c>broker.admin.token</c> is set (required off loopback), see <see cref="AdminGuard"/>.
/// </summary>
public static class AdminApi
{
    /// <summary>Topic settings are persisted: when the store cannot answer, the reply is 503.</summary>
    private static async Task<IResult> AskSettings(ActorSystem system, object request, TimeSpan askTimeout)
    {
        var region = Akka.Hosting.ActorRegistry.For(system).Get<Hosting.TopicSettingsRegion>();
        try
        {
            var current = await region.Ask<TopicSettingsCommands.Current>(request, askTimeout);
            return Json(new JsonObject { ["topic"] = current.Topic, ["readOnly"] = current.ReadOnly });
        }
        catch (AskTimeoutException)
        {
            return Error(StatusCodes.Status503ServiceUnavailable, "the settings store did not answer (is the database reachable?)");
        }
    }

    /// <param name="settings">The admin API's timeouts (<c>broker.admin</c>).</param>
    /// <param name="guard">Listener, Host, token and content-type checks, and the log of every action (<see cref="AdminGuard"/>).</param>
    public static void MapAdminApi(this WebApplication app, AdminSettings settings, AdminGuard guard)
    {
        var askTimeout = settings.AskTimeout;
        var drainTimeout = settings.DrainTimeout;
        var group = app.MapGroup("/admin").AddEndpointFilter(guard);

        group.MapGet("/cluster", (ActorSystem system) => Json(ClusterView(Cluster.Get(system))));
        group.MapClusterEvents();
        group.MapLogAdmin();
        group.MapPost("/cluster/leave", async (HttpRequest req, ActorSystem system) =>
            await WithMember(req, system, (cluster, member) => cluster.Leave(member.Address), "leaving"));
        group.MapPost("/cluster/down", async (HttpRequest req, ActorSystem system) =>
            await WithMember(req, system, (cluster, member) => cluster.Down(member.Address), "downed"));
        group.MapPost("/cluster/down-unreachable", (ActorSystem system) =>
        {
            var cluster = Cluster.Get(system);
            var downed = new JsonArray();
            foreach (var m in cluster.State.Unreachable)
            {
                cluster.Down(m.Address);
                downed.Add(m.Address.ToString());
            }
            return Json(new JsonObject { ["downed"] = downed });
        });

        group.MapGet("/sharding/regions", (ActorSystem system) =>
            Json(new JsonObject { ["regions"] = Array(ClusterSharding.Get(system).ShardTypeNames.OrderBy(n => n, StringComparer.Ordinal)) }));
        group.MapGet("/sharding/{type}/region-stats", async (string type, ActorSystem system) =>
        {
            var (answers, problem) = await RegionStats(system, type, askTimeout);
            if (problem is not null) return problem;
            var regions = new JsonArray();
            var errors = new JsonArray();
            foreach (var a in answers!)
            {
                if (a.Answer is not { } region)
                {
                    errors.Add(a.Problem);
                    continue;
                }
                regions.Add(new JsonObject
                {
                    ["address"] = a.Address.ToString(),
                    ["shards"] = region.Stats.Count,
                    ["entities"] = region.Stats.Values.Sum(),
                    ["failed"] = Array(region.Failed.OrderBy(s => s, StringComparer.Ordinal)),
                });
                if (region.Failed.Count > 0)
                    errors.Add($"{a.Address}: shards {string.Join(",", region.Failed.OrderBy(s => s, StringComparer.Ordinal))} did not answer (starting, stopping or handing off)");
            }
            return Json(new JsonObject { ["type"] = type, ["regions"] = regions, ["complete"] = errors.Count == 0, ["errors"] = errors });
        });
        group.MapGet("/sharding/{type}/shard-stats", async (string type, ActorSystem system) =>
        {
            var (answers, problem) = await RegionStats(system, type, askTimeout);
            if (problem is not null) return problem;
            var shards = new JsonArray();
            var errors = new JsonArray();
            foreach (var a in answers!)
            {
                if (a.Answer is not { } region)
                {
                    errors.Add(a.Problem);
                    continue;
                }
                foreach (var (shard, entities) in region.Stats.OrderBy(s => s.Key, StringComparer.Ordinal))
                    shards.Add(new JsonObject { ["address"] = a.Address.ToString(), ["shard"] = shard, ["entities"] = entities });
                if (region.Failed.Count > 0)
                    errors.Add($"{a.Address}: shards {string.Join(",", region.Failed.OrderBy(s => s, StringComparer.Ordinal))} did not answer (starting, stopping or handing off)");
            }
            return Json(new JsonObject { ["type"] = type, ["shards"] = shards, ["complete"] = errors.Count == 0, ["errors"] = errors });
        });

        group.MapGet("/topics", async (ActorSystem system, KafkaSettings kafka) =>
        {
            var (nodes, errors) = await AskAllNodes(system, askTimeout);
            var topics = new JsonArray();
            foreach (var name in nodes.SelectMany(n => n.Topics.Select(t => t.Topic)).Distinct(StringComparer.Ordinal).OrderBy(t => t, StringComparer.Ordinal))
                topics.Add(TopicView(name, kafka, nodes));
            return Json(new JsonObject { ["topics"] = topics, ["errors"] = errors });
        });
        group.MapGet("/topics/{name}", async (string name, ActorSystem system, KafkaSettings kafka) =>
        {
            if (!TopicName.IsValid(name)) return Error(StatusCodes.Status400BadRequest, $"invalid topic name '{name}'");
            var owner = TopicOwner(system, name, askTimeout);
            var (nodes, errors) = await AskAllNodes(system, askTimeout);
            var view = TopicView(name, kafka, nodes);
            var (writer, ownerErrors) = await owner;
            view["writer"] = writer;
            foreach (var e in ownerErrors) errors.Add(e);
            view["errors"] = errors;
            return Json(view);
        });
        group.MapGet("/topics/{name}/settings", async (string name, ActorSystem system) =>
        {
            if (!TopicName.IsValid(name)) return Error(StatusCodes.Status400BadRequest, $"invalid topic name '{name}'");
            return await AskSettings(system, new TopicSettingsCommands.Get(name), askTimeout);
        });
        group.MapPut("/topics/{name}/settings", async (string name, HttpRequest req, ActorSystem system) =>
        {
            if (!TopicName.IsValid(name)) return Error(StatusCodes.Status400BadRequest, $"invalid topic name '{name}'");
            JsonNode? body;
            try { body = await JsonNode.ParseAsync(req.Body); }
            catch (System.Text.Json.JsonException) { body = null; }
            if (body?["readOnly"] is not JsonValue v || !v.TryGetValue<bool>(out var readOnly))
                return Error(StatusCodes.Status400BadRequest, "body must be {\"readOnly\": true|false}");
            return await AskSettings(system, new TopicSettingsCommands.SetReadOnly(name, readOnly), askTimeout);
        });
        group.MapGet("/connections", async (ActorSystem system) =>
        {
            var (nodes, errors) = await AskAllNodes(system, askTimeout);
            var list = new JsonArray();
            foreach (var n in nodes.OrderBy(n => n.Address, StringComparer.Ordinal))
                list.Add(new JsonObject { ["address"] = n.Address, ["connections"] = n.Connections, ["draining"] = n.Draining });
            return Json(new JsonObject { ["nodes"] = list, ["total"] = nodes.Sum(n => n.Connections), ["errors"] = errors });
        });
        group.MapPost("/nodes/drain", async (HttpRequest req, ActorSystem system) =>
        {
            var (address, problem) = await ReadAddress(req);
            if (problem is not null) return problem;
            var member = FindMember(Cluster.Get(system), address!);
            if (member is null) return Error(StatusCodes.Status404NotFound, $"no cluster member at {address}");
            try
            {
                var drained = await NodeInfoOf(system, member.Address).Ask<NodeInfo.Drained>(new NodeInfo.DrainNode((int)drainTimeout.TotalMilliseconds), drainTimeout + askTimeout);
                return Json(new JsonObject { ["address"] = drained.Address, ["closed"] = drained.Closed, ["remaining"] = drained.Remaining });
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                return Error(StatusCodes.Status504GatewayTimeout, $"the node {address} did not answer");
            }
        });
    }

    private static JsonObject ClusterView(Cluster cluster)
    {
        var state = cluster.State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var members = new JsonArray();
        foreach (var m in state.Members.OrderBy(m => m.Address.ToString(), StringComparer.Ordinal))
        {
            members.Add(new JsonObject
            {
                ["address"] = m.Address.ToString(),
                ["status"] = m.Status.ToString(),
                ["roles"] = Array(m.Roles.OrderBy(r => r, StringComparer.Ordinal)),
                ["reachable"] = !unreachable.Contains(m.Address),
                ["leader"] = m.Address.Equals(state.Leader),
                ["self"] = m.Address.Equals(cluster.SelfAddress),
            });
        }
        return new JsonObject
        {
            ["self"] = cluster.SelfAddress.ToString(),
            ["selfStatus"] = cluster.SelfMember.Status.ToString(),
            ["leader"] = state.Leader?.ToString(),
            ["members"] = members,
            ["unreachable"] = Array(unreachable.Select(a => a.ToString()).OrderBy(a => a, StringComparer.Ordinal)),
        };
    }

    private static JsonObject TopicView(string name, KafkaSettings kafka, IReadOnlyList<NodeInfo.NodeStatus> nodes)
    {
        var perNode = new JsonArray();
        var total = 0;
        foreach (var n in nodes.OrderBy(n => n.Address, StringComparer.Ordinal))
        {
            var t = n.Topics.FirstOrDefault(t => t.Topic == name);
            if (t is null) continue;
            total += t.Subscribers;
            perNode.Add(new JsonObject { ["address"] = n.Address, ["subscribers"] = t.Subscribers });
        }
        return new JsonObject
        {
            ["topic"] = name,
            ["kafkaTopic"] = kafka.KafkaTopicFor(name),
            ["subscribers"] = total,
            ["nodes"] = perNode,
        };
    }

    /// <summary>Asks the node-info actor of every member that is not down or removed; nodes that do not answer are listed as errors.</summary>
    private static async Task<(List<NodeInfo.NodeStatus> Nodes, JsonArray Errors)> AskAllNodes(ActorSystem system, TimeSpan askTimeout)
    {
        var members = Cluster.Get(system).State.Members
            .Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving or MemberStatus.Joining)
            .ToList();
        var asks = members.Select(async m =>
        {
            try
            {
                return (Status: await NodeInfoOf(system, m.Address).Ask<NodeInfo.NodeStatus>(NodeInfo.GetNodeStatus.Instance, askTimeout), Error: (string?)null);
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                return (Status: (NodeInfo.NodeStatus?)null, Error: $"{m.Address}: no answer within {askTimeout.TotalSeconds:0.#}s");
            }
        });
        var results = await Task.WhenAll(asks);
        var errors = new JsonArray();
        foreach (var r in results) if (r.Error is not null) errors.Add(r.Error);
        return ([.. results.Where(r => r.Status is not null).Select(r => r.Status!)], errors);
    }

    private static ActorSelection NodeInfoOf(ActorSystem system, Address address) =>
        system.ActorSelection(new RootActorPath(address) / "user" / NodeInfo.ActorName);

    /// <summary>
    /// Every region's own stats (<see cref="ShardingQueries"/>); a problem result when the type is
    /// unknown, this node is not in a cluster, or no region answered at all.
    /// </summary>
    private static async Task<(IReadOnlyList<ShardingQueries.RegionAnswer<ShardRegionStats>>? Answers, IResult? Problem)> RegionStats(ActorSystem system, string type, TimeSpan askTimeout)
    {
        if (!ClusterSharding.Get(system).ShardTypeNames.Contains(type)) return (null, UnknownType(type));
        var cluster = Cluster.Get(system);
        if (ShardingQueries.RegionHosts(cluster).Count == 0)
            return (null, Error(StatusCodes.Status503ServiceUnavailable, $"{cluster.SelfAddress} is not an Up member of a cluster (itself {cluster.SelfMember.Status}): no shard regions to ask"));
        var answers = await ShardingQueries.AskEveryRegionAsync<ShardRegionStats>(system, type, GetShardRegionStats.Instance, askTimeout);
        if (answers.All(a => a.Answer is null))
            return (null, Error(StatusCodes.Status503ServiceUnavailable,
                $"no {type} region answered ({string.Join("; ", answers.Select(a => a.Problem))}); the cluster may be rebalancing after a membership change, try again"));
        return (answers, null);
    }

    /// <summary>
    /// Where a topic's writer (its entity in the topic region) lives: the shard id from the region's
    /// own message extractor, and the member whose region hosts that shard, asked of every region.
    /// </summary>
    private static async Task<(JsonObject Writer, IReadOnlyList<string> Errors)> TopicOwner(ActorSystem system, string topic, TimeSpan askTimeout)
    {
        var region = ClusterSharding.Get(system).ShardRegion(Hosting.AkkaSetup.TopicTypeName);
        string shard;
        try
        {
            shard = (await region.Ask<EntityLocation>(new GetEntityLocation(topic, askTimeout), askTimeout + askTimeout)).ShardId;
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            return (new JsonObject { ["state"] = "unknown" }, [$"the local {Hosting.AkkaSetup.TopicTypeName} region did not answer within {askTimeout.TotalSeconds:0.#}s"]);
        }
        var answers = await ShardingQueries.AskEveryRegionAsync<CurrentShardRegionState>(system, Hosting.AkkaSetup.TopicTypeName, GetShardRegionState.Instance, askTimeout);
        var errors = answers.Where(a => a.Problem is not null).Select(a => a.Problem!).ToList();
        var host = answers.FirstOrDefault(a => a.Answer?.Shards.Any(s => s.ShardId == shard) == true);
        var writer = new JsonObject { ["shard"] = shard };
        if (host is not null)
        {
            writer["owner"] = host.Address.ToString();
            writer["state"] = host.Answer!.Shards.Single(s => s.ShardId == shard).EntityIds.Contains(topic) ? "running" : "stopped";
        }
        else
        {
            // Not hosted by any region that answered: unallocated if all answered, else unknown.
            writer["owner"] = null;
            writer["state"] = errors.Count == 0 ? "not started" : "unknown";
        }
        return (writer, errors);
    }

    private static async Task<IResult> WithMember(HttpRequest req, ActorSystem system, Action<Cluster, Member> act, string done)
    {
        var (address, problem) = await ReadAddress(req);
        if (problem is not null) return problem;
        var cluster = Cluster.Get(system);
        var member = FindMember(cluster, address!);
        if (member is null) return Error(StatusCodes.Status404NotFound, $"no cluster member at {address}");
        act(cluster, member);
        return Json(new JsonObject { ["address"] = member.Address.ToString(), ["result"] = done });
    }

    private static Member? FindMember(Cluster cluster, string address) =>
        cluster.State.Members.FirstOrDefault(m => m.Address.ToString() == address);

    private static async Task<(string? Address, IResult? Problem)> ReadAddress(HttpRequest req)
    {
        try
        {
            var body = await JsonNode.ParseAsync(req.Body);
            if (body?["address"]?.GetValue<string>() is { Length: > 0 } a) return (a.TrimEnd('/'), null);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            // fall through
        }
        return (null, Error(StatusCodes.Status400BadRequest, "expected a JSON body {\"address\": \"akka.tcp://broker@host:port\"}"));
    }

    private static IResult UnknownType(string type) => Error(StatusCodes.Status404NotFound, $"no shard region of type '{type}'");

    internal static IResult Error(int status, string message) => Json(new JsonObject { ["error"] = message }, status);

    private static JsonArray Array(IEnumerable<string> values)
    {
        var a = new JsonArray();
        foreach (var v in values) a.Add(v);
        return a;
    }

    internal static IResult Json(JsonNode node, int status = StatusCodes.Status200OK) =>
        Results.Content(node.ToJsonString(), "application/json", statusCode: status);
}
