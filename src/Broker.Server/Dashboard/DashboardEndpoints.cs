using System.Reflection;
using Akka.Actor;
using Akka.Cluster;
using Broker.Core.Connections;

namespace Broker.Server.Dashboard;

/// <summary>One cluster member as the dashboard shows it.</summary>
public sealed record ClusterMemberView(string Address, string Status, bool Reachable, IReadOnlyList<string> Roles);

/// <summary>
/// What <c>GET /api/cluster</c> answers: this node's address, the leader and the members with
/// their status as this node sees them, and this node's open WebSocket connections. Read only.
/// </summary>
public sealed record ClusterView(string Self, string? Leader, int Connections, IReadOnlyList<ClusterMemberView> Members);

/// <summary>
/// The dashboard: a static page at <c>/</c> (HTML and JS embedded in this assembly, no build step)
/// and the small read-only <c>/api/cluster</c> it polls. The page's live console speaks the public
/// WebSocket protocol on <c>/ws</c> through the TypeScript client, whose browser bundle
/// (<c>src/client-ts/dist/broker-client.js</c>, committed) is embedded too and served at
/// <c>/broker-client.js</c> to any origin, so that a page anywhere can import it from its broker.
/// </summary>
public static class DashboardEndpoints
{
    private static readonly Lazy<byte[]> Page = new(() => Resource("index.html"));
    private static readonly Lazy<byte[]> Script = new(() => Resource("dashboard.js"));
    private static readonly Lazy<byte[]> Client = new(() => Resource("broker-client.js"));

    public static void MapDashboard(this WebApplication app)
    {
        app.MapGet("/", () => Results.Bytes(Page.Value, "text/html; charset=utf-8"));
        app.MapGet("/dashboard.js", () => Results.Bytes(Script.Value, "text/javascript; charset=utf-8"));
        app.MapGet("/broker-client.js", (HttpResponse response) =>
        {
            // An ES module: pages of other origins import it in CORS mode. It holds no secret.
            response.Headers.AccessControlAllowOrigin = "*";
            return Results.Bytes(Client.Value, "text/javascript; charset=utf-8");
        });
        app.MapGet("/api/cluster", (ActorSystem system, ConnectionRegistry registry) => Results.Json(View(system, registry)));
        // The topics this node reads: local subscribers and the feed's position (the page derives a rate from it).
        // A multiplexed namespace's shared Kafka topic is one row: its broker topics known to this
        // node (with local subscribers or recent history) and the records skipped as misrouted.
        app.MapGet("/api/topics", async (Broker.Core.Fanout.FeedHub feeds) => Results.Json(new
        {
            topics = (await feeds.SnapshotAsync())
                .OrderBy(f => f.Topic, StringComparer.Ordinal)
                .Select(f => new
                {
                    topic = f.Topic, kafkaTopic = f.KafkaTopic, subscribers = f.Subscribers, position = f.Next,
                    shared = f.Shared, topics = f.Shared ? f.Topics : (int?)null, misrouted = f.Shared ? f.Misrouted : (long?)null,
                })
                .ToArray(),
        }));
    }

    public static ClusterView View(ActorSystem system, ConnectionRegistry registry)
    {
        var cluster = Cluster.Get(system);
        var state = cluster.State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var members = state.Members
            .Select(m => new ClusterMemberView(m.Address.ToString(), m.Status.ToString(), !unreachable.Contains(m.Address), m.Roles.OrderBy(r => r, StringComparer.Ordinal).ToArray()))
            .OrderBy(m => m.Address, StringComparer.Ordinal)
            .ToArray();
        return new ClusterView(cluster.SelfAddress.ToString(), state.Leader?.ToString(), registry.Count, members);
    }

    private static byte[] Resource(string name)
    {
        var assembly = typeof(DashboardEndpoints).Assembly;
        using var stream = assembly.GetManifestResourceStream($"Broker.Server.Dashboard.{name}")
            ?? throw new InvalidOperationException($"the dashboard resource {name} is not embedded in {assembly.GetName().Name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
