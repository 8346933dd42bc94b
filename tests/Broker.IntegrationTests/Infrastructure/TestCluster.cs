using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster;
using Broker.DevKafka;
using Broker.Server.Hosting;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// Several broker nodes in one test process — each with its own ActorSystem, Kestrel and ports —
/// forming one Akka cluster and sharing one Kafka-protocol log (a standalone mock cluster with its
/// topic-creation endpoint, as a separate Broker.DevKafka would be).
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly bool _ownsKafka;

    private TestCluster(MockKafkaCluster kafka, AdminEndpoint admin, string[] seeds, bool ownsKafka = true)
    {
        _ownsKafka = ownsKafka;
        Kafka = kafka;
        Admin = admin;
        Seeds = seeds;
    }

    public MockKafkaCluster Kafka { get; }
    public AdminEndpoint Admin { get; }
    public string[] Seeds { get; }
    public List<TestBroker> Nodes { get; } = [];

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <param name="hocon">Extra HOCON for every node (values that are not strings, e.g. lists of namespaces).</param>
    public static Task<TestCluster> StartAsync(int nodes, IReadOnlyDictionary<string, string>? overrides = null, string? hocon = null)
    {
        var kafka = MockKafkaCluster.Start("127.0.0.1", 0);
        return StartAsync(nodes, overrides, kafka, new AdminEndpoint(kafka, "127.0.0.1", 0), ownsKafka: true, hocon);
    }

    /// <summary>
    /// A new cluster (new nodes, new ports) on this cluster's Kafka-protocol log, which stays
    /// owned by this cluster: a full restart of every broker while the log keeps its messages.
    /// </summary>
    public Task<TestCluster> StartAnotherOnSameLogAsync(int nodes, IReadOnlyDictionary<string, string>? overrides = null) =>
        StartAsync(nodes, overrides, Kafka, Admin, ownsKafka: false);

    private static async Task<TestCluster> StartAsync(int nodes, IReadOnlyDictionary<string, string>? overrides, MockKafkaCluster kafka, AdminEndpoint admin, bool ownsKafka,
        string? hocon = null)
    {
        var ports = Enumerable.Range(0, nodes).Select(_ => FreePort()).ToArray();
        // Nodes with broker.cluster.tls have akka.ssl.tcp:// addresses.
        var protocol = AkkaSetup.Protocol(tls: overrides?.GetValueOrDefault("broker.cluster.tls.pfx-file") is { Length: > 0 });
        var seeds = ports.Select(p => $"{protocol}://broker@127.0.0.1:{p}").ToArray();
        var cluster = new TestCluster(kafka, admin, seeds, ownsKafka);
        var started = await Task.WhenAll(ports.Select(p => TestBroker.StartAsync(cluster.NodeSettings(p, overrides), hocon)));
        cluster.Nodes.AddRange(started);
        await cluster.AwaitUpAsync(nodes);
        return cluster;
    }

    public Dictionary<string, string> NodeSettings(int remotePort, IReadOnlyDictionary<string, string>? overrides)
    {
        var values = new Dictionary<string, string>
        {
            ["broker.kafka.embedded.enabled"] = "off",
            ["broker.kafka.bootstrap-servers"] = Kafka.BootstrapServers,
            ["broker.kafka.topic-creation"] = "devkafka",
            ["broker.kafka.devkafka-admin"] = Admin.Address,
            ["broker.cluster.port"] = remotePort.ToString(),
            ["broker.cluster.seed-nodes"] = string.Join(",", Seeds),
            ["broker.cluster.split-brain-resolver.stable-after"] = "3s",
        };
        if (overrides is not null) foreach (var (k, v) in overrides) values[k] = v;
        return values;
    }

    /// <summary>Waits until every running node sees <paramref name="count"/> members Up.</summary>
    public async Task AwaitUpAsync(int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        foreach (var node in Nodes)
        {
            var cluster = Cluster.Get(node.App.Services.GetRequiredService<ActorSystem>());
            while (cluster.State.Members.Count(m => m.Status == MemberStatus.Up) != count || cluster.State.Unreachable.Count > 0)
                await Task.Delay(100, cts.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            try { await node.DisposeAsync(); } catch (Exception) { /* already stopped by the test */ }
        }
        if (!_ownsKafka) return;
        Admin.Dispose();
        Kafka.Dispose();
    }
}
