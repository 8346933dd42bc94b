using System.Text.Json.Nodes;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Cluster;
using Broker.Core.Admin;

namespace Broker.Server.Admin;

/// <summary>
/// The admin API's live membership verbs: <c>GET /admin/cluster/events</c> streams this node's
/// member and reachability events as Server-Sent Events (<c>brokerctl cluster tail</c>), and
/// <c>POST /admin/cluster/join</c> makes a node that is not yet in a cluster join one
/// (<c>brokerctl cluster join</c>).
/// </summary>
public static class ClusterEventsApi
{
    /// <summary>
    /// Events one follower may fall behind by before it is dropped (it starts again with the current
    /// state). A constant, not a setting: membership changes come a few per node and change, so only a
    /// follower that stopped reading ever fills it; it bounds what such a follower holds.
    /// </summary>
    private const int FollowerBuffer = 1024;

    public static RouteGroupBuilder MapClusterEvents(this RouteGroupBuilder admin)
    {
        admin.MapGet("/cluster/events", (HttpContext http, ActorSystem system) =>
        {
            var channel = Channel.CreateBounded<ClusterEventNotice>(new BoundedChannelOptions(FollowerBuffer) { SingleReader = true, SingleWriter = true });
            var follower = system.ActorOf(ClusterEventsActor.Props(channel.Writer), $"cluster-events-{Guid.NewGuid():N}");
            return EventStream.Of(http, channel.Reader, ToJson, () => system.Stop(follower));
        });

        admin.MapPost("/cluster/join", async (HttpRequest req, ActorSystem system) =>
        {
            string? text = null;
            try
            {
                text = (await JsonNode.ParseAsync(req.Body))?["address"]?.GetValue<string>();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
            {
                // answered below
            }
            if (string.IsNullOrWhiteSpace(text) || !TryParseAddress(text.Trim().TrimEnd('/'), out var target))
                return AdminApi.Error(StatusCodes.Status400BadRequest, "expected a JSON body {\"address\": \"akka.tcp://broker@host:port\"}");
            var cluster = Cluster.Get(system);
            var members = cluster.State.Members;
            if (members.Any(m => m.Address.Equals(target)) && members.Any(m => m.Address.Equals(cluster.SelfAddress)))
                return AdminApi.Json(new JsonObject { ["address"] = cluster.SelfAddress.ToString(), ["target"] = target.ToString(), ["result"] = "already a member of that cluster" });
            if (!members.IsEmpty)
            {
                // Akka ignores a Join from a node that is already a member: say so instead of "ok".
                return AdminApi.Error(StatusCodes.Status409Conflict,
                    $"{cluster.SelfAddress} is already a member of a cluster ({members.Count} members, itself {cluster.SelfMember.Status}); " +
                    "a node joins one cluster once: restart it with the seed nodes (or broker.cluster.self-join = off) to join another");
            }
            cluster.Join(target);
            return AdminApi.Json(new JsonObject { ["address"] = cluster.SelfAddress.ToString(), ["target"] = target.ToString(), ["result"] = "joining" },
                StatusCodes.Status202Accepted);
        });
        return admin;
    }

    private static bool TryParseAddress(string text, out Address address)
    {
        try
        {
            address = Address.Parse(text);
            return address.HasGlobalScope;
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            address = Address.AllSystems;
            return false;
        }
    }

    private static JsonNode ToJson(ClusterEventNotice n)
    {
        var roles = new JsonArray();
        foreach (var r in n.Roles) roles.Add(r);
        var o = new JsonObject
        {
            ["time"] = n.At.UtcDateTime.ToString("O"),
            ["event"] = n.Event,
            ["address"] = n.Address,
            ["status"] = n.Status,
            ["roles"] = roles,
        };
        if (n.Previous is not null) o["previous"] = n.Previous;
        return o;
    }
}
