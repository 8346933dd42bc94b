using Xunit.Abstractions;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// Broker nodes as separate processes (<see cref="BrokerProcess"/>) forming one cluster over a
/// standalone Kafka-protocol log (<see cref="DevKafkaProcess"/>): the fixture of the failure tests.
/// Every fault is a signal to a PID the fixture started: <c>kill -9</c> of a node
/// (<see cref="Kill"/>), a node restarted on its old ports (<see cref="RestartAsync"/>), the log
/// frozen and resumed (<see cref="DevKafkaProcess.Freeze"/>). Disposing kills whatever is left.
/// </summary>
public sealed class ProcessCluster : IAsyncDisposable
{
    private readonly int[] _httpPorts;
    private readonly int[] _clusterPorts;
    private readonly string[] _seeds;
    private readonly IReadOnlyList<string> _config;
    private readonly IReadOnlyDictionary<string, string>? _environment;

    private ProcessCluster(DevKafkaProcess log, int nodes, IReadOnlyList<string> config, IReadOnlyDictionary<string, string>? environment)
    {
        Log = log;
        var ports = new HashSet<int>();
        while (ports.Count < 2 * nodes) ports.Add(TestCluster.FreePort());
        _clusterPorts = [.. ports.Take(nodes)];
        _httpPorts = [.. ports.Skip(nodes)];
        _seeds = [.. _clusterPorts.Select(BrokerProcess.SeedAddress)];
        _config = config;
        _environment = environment;
    }

    public DevKafkaProcess Log { get; }

    /// <summary>The nodes; a restarted node replaces its dead predecessor at the same index.</summary>
    public List<BrokerProcess> Nodes { get; } = [];

    /// <summary>
    /// Starts the log and <paramref name="nodes"/> nodes and waits until every node acknowledges a
    /// publish. <paramref name="config"/>: HOCON lines for every node.
    /// </summary>
    public static async Task<ProcessCluster> StartAsync(int nodes, IEnumerable<string>? config = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var log = await DevKafkaProcess.StartAsync();
        var cluster = new ProcessCluster(log, nodes, [.. config ?? []], environment);
        try
        {
            for (var i = 0; i < nodes; i++) cluster.Nodes.Add(cluster.StartNode(i));
            await Task.WhenAll(cluster.Nodes.Select(n => n.WaitReadyAsync(TimeSpan.FromSeconds(120))));
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    private BrokerProcess StartNode(int i) =>
        BrokerProcess.Start($"node{i + 1}", _httpPorts[i], _clusterPorts[i], _seeds, Log.BootstrapServers, Log.AdminAddress, _config, _environment);

    /// <summary>kill -9 of node <paramref name="i"/>.</summary>
    public void Kill(int i) => Nodes[i].Kill();

    /// <summary>Starts node <paramref name="i"/> again on its ports (after it died) and waits until it is ready.</summary>
    public async Task<BrokerProcess> RestartAsync(int i)
    {
        if (!Nodes[i].HasExited) throw new InvalidOperationException($"{Nodes[i].Name} still runs");
        await Nodes[i].DisposeAsync();
        Nodes[i] = StartNode(i);
        await Nodes[i].WaitReadyAsync(TimeSpan.FromSeconds(120));
        return Nodes[i];
    }

    /// <summary>Nodes that run.</summary>
    public IEnumerable<int> Live => Enumerable.Range(0, Nodes.Count).Where(i => !Nodes[i].HasExited);

    /// <summary>
    /// The node that last logged that it started the writer of <paramref name="topic"/> (after
    /// <paramref name="after"/>), waiting (bounded) until one did.
    /// </summary>
    public async Task<int> WriterOfAsync(string topic, DateTime after, TimeSpan timeout)
    {
        var line = $"Topic {topic} ready on ";
        int? found = null;
        await Wait.UntilAsync(() =>
        {
            DateTime latest = default;
            for (var i = 0; i < Nodes.Count; i++)
            {
                if (Nodes[i].LastLineAt(line, after) is { } at && at > latest)
                {
                    latest = at;
                    found = i;
                }
            }
            return found is not null;
        }, $"a node started the writer of {topic}", timeout);
        return found!.Value;
    }

    /// <summary>Writes the last lines of every node's log (for a failed test).</summary>
    public void Dump(ITestOutputHelper output, int lines = 80)
    {
        foreach (var node in Nodes)
        {
            var all = node.Output.Split('\n');
            output.WriteLine($"---- {node.Name} (log {node.LogPath}), last {lines} of {all.Length} lines ----");
            foreach (var line in all.TakeLast(lines)) output.WriteLine(line.TrimEnd('\r'));
        }
        output.WriteLine("---- Broker.DevKafka ----");
        output.WriteLine(Log.Output);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes) await node.DisposeAsync();
        await Log.DisposeAsync();
    }
}
