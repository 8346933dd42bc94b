using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.Soak.Cluster;

/// <summary>
/// Three broker processes on 127.0.0.1 that form one Akka.NET cluster (every node a seed, as
/// <c>scripts/cluster.sh</c> starts them), a standalone Kafka-protocol log process, and the session
/// store. Ports are chosen free at start and kept across restarts.
/// </summary>
public sealed class SoakCluster : IAsyncDisposable
{
    /// <summary>HOCON every node gets (BROKER_CONFIG): topics under soak.mp. have three partitions (order per key).</summary>
    public const string Hocon = """
        broker.namespaces = [ { pattern = "soak.mp.>", partitions = 3 } ]
        """;

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private SoakCluster(LogProcess log, Database database, List<NodeProcess> nodes)
    {
        Log = log;
        Database = database;
        Nodes = nodes;
    }

    public LogProcess Log { get; }
    public Database Database { get; }
    public IReadOnlyList<NodeProcess> Nodes { get; }

    /// <summary>Every node's WebSocket endpoint, starting with node <paramref name="first"/> (a client's reconnects go round them).</summary>
    public IReadOnlyList<Uri> Endpoints(int first) =>
        [.. Enumerable.Range(0, Nodes.Count).Select(i => Nodes[(first + i) % Nodes.Count].WsUri)];

    public static async Task<SoakCluster> StartAsync(string binDir, string workDir, Database database, CancellationToken ct)
    {
        // Below the ephemeral range, so that no outgoing connection takes a port while its node is down and about to restart on it.
        var first = FreePorts.Ranges(1, 3 * 3 + 2)[0];
        var ports = Enumerable.Range(first, 3 * 3 + 2).ToArray();
        var log = await LogProcess.StartAsync(Path.Combine(binDir, "Broker.DevKafka.dll"), ports[9], ports[10], Path.Combine(workDir, "devkafka.log"), ct);
        var configFile = Path.Combine(workDir, "soak.conf");
        await File.WriteAllTextAsync(configFile, Hocon + "\n", ct);
        var seeds = string.Join(",", Enumerable.Range(0, 3).Select(i => $"akka.tcp://broker@127.0.0.1:{ports[6 + i]}"));
        var nodes = new List<NodeProcess>();
        for (var i = 0; i < 3; i++)
        {
            var env = new Dictionary<string, string>
            {
                ["BROKER_HTTP_HOST"] = "127.0.0.1",
                ["BROKER_HTTP_PORT"] = ports[i].ToString(),
                ["BROKER_ADMIN_PORT"] = ports[3 + i].ToString(),
                ["BROKER_CLUSTER_HOST"] = "127.0.0.1",
                ["BROKER_CLUSTER_PORT"] = ports[6 + i].ToString(),
                ["BROKER_SEEDS"] = seeds,
                ["BROKER_KAFKA_EMBEDDED"] = "off",
                ["BROKER_KAFKA_BOOTSTRAP"] = log.Bootstrap,
                ["BROKER_TOPIC_CREATION"] = "devkafka",
                ["BROKER_DEVKAFKA_ADMIN"] = log.Admin,
                ["BROKER_CONFIG"] = configFile,
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["DOTNET_gcServer"] = "0", // three nodes on two cores: workstation GC, as the tests run them
                ["Logging__LogLevel__Microsoft"] = "Warning",
            };
            foreach (var (k, v) in database.NodeEnvironment()) env[k] = v;
            nodes.Add(new NodeProcess(i, ports[i], ports[3 + i], ports[6 + i], Path.Combine(binDir, "Broker.Server.dll"),
                Path.Combine(workDir, $"node{i + 1}.log"), env));
        }
        var cluster = new SoakCluster(log, database, nodes);
        try
        {
            foreach (var n in nodes) n.Start();
            await Task.WhenAll(nodes.Select(n => n.WaitReadyAsync(TimeSpan.FromSeconds(120), ct)));
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>POST /admin/nodes/drain for <paramref name="node"/>, asked of another running node.</summary>
    public async Task DrainAsync(NodeProcess node, CancellationToken ct)
    {
        var via = Nodes.FirstOrDefault(n => n != node && n.IsRunning) ?? node;
        using var r = await Http.PostAsJsonAsync(via.AdminAddress + "/admin/nodes/drain", new { address = node.ClusterAddress }, ct);
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"drain of {node.Name} answered {(int)r.StatusCode}: {await r.Content.ReadAsStringAsync(ct)}");
    }

    /// <summary>The node whose region hosts <paramref name="topic"/>'s writer (GET /admin/topics/{name}), if a node can tell.</summary>
    public async Task<NodeProcess?> WriterOwnerAsync(string topic, CancellationToken ct)
    {
        foreach (var via in Nodes.Where(n => n.IsRunning))
        {
            try
            {
                var view = await Http.GetFromJsonAsync<JsonObject>($"{via.AdminAddress}/admin/topics/{topic}", ct);
                var owner = (string?)view?["writer"]?["owner"];
                return Nodes.FirstOrDefault(n => n.ClusterAddress == owner);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException && !ct.IsCancellationRequested)
            {
                // ask another node
            }
        }
        return null;
    }

    /// <summary>Reads a counter of a node's /metrics (the sum of its samples), null when the node does not answer.</summary>
    public static async Task<double?> MetricAsync(NodeProcess node, string name, CancellationToken ct)
    {
        try
        {
            var text = await Http.GetStringAsync($"http://127.0.0.1:{node.HttpPort}/metrics", ct);
            double? sum = null;
            foreach (var line in text.Split('\n'))
            {
                if (!line.StartsWith(name, StringComparison.Ordinal) || line.Length <= name.Length || line[name.Length] is not ('{' or ' ')) continue;
                // name{labels} value [timestamp]
                var rest = line[name.Length] == '{' ? line[(line.IndexOf('}', name.Length) + 1)..] : line[name.Length..];
                var value = rest.Trim().Split(' ')[0];
                if (double.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var v)) sum = (sum ?? 0) + v;
            }
            return sum;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>Stops the nodes (SIGTERM, bounded) before the log, then the database's fault machinery.</summary>
    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Nodes.Select(n => n.DisposeAsync().AsTask()));
        await Log.DisposeAsync();
        await Database.DisposeAsync();
    }
}
