using Broker.Client;
using Broker.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.IntegrationTests.Client;

/// <summary>
/// Three broker processes form one cluster over a standalone Kafka-protocol log (a Broker.DevKafka
/// process); the node that hosts the topic's actor — with a publisher and a subscriber on it — is
/// killed with SIGKILL while two publishers and three subscribers, all <see cref="BrokerClient"/>s
/// given the three nodes as endpoints, are at work. Every acknowledged message is in the log once
/// and every subscriber receives each once, in log order.
/// </summary>
public sealed class ClientClusterFailoverTests(ITestOutputHelper output)
{
    private const string Topic = "client.failover";
    private const int Nodes = 3;
    private const int PerPublisher = 1500;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task Killing_a_node_while_publishing_and_subscribing_loses_and_repeats_nothing_for_client_library_users()
    {
        await using var log = await DevKafkaProcess.StartAsync();
        var ports = new HashSet<int>();
        while (ports.Count < 2 * Nodes) ports.Add(TestCluster.FreePort());
        var (clusterPorts, httpPorts) = (ports.Take(Nodes).ToArray(), ports.Skip(Nodes).ToArray());
        var seeds = clusterPorts.Select(BrokerProcess.SeedAddress).ToArray();
        string[] config =
        [
            "broker.cluster.split-brain-resolver.stable-after = 3s",
            "broker.shutdown-deadline = 5s",
            // Node loss is under test: a client starved of CPU by four processes on a small machine
            // should not also be closed as a slow consumer (it would recover the same way).
            "broker.websocket.outbound-buffer-frames = 16384",
            "akka.loglevel = INFO",
        ];
        var nodes = Enumerable.Range(0, Nodes)
            .Select(n => BrokerProcess.Start($"node{n + 1}", httpPorts[n], clusterPorts[n], seeds, log.BootstrapServers, log.AdminAddress, config))
            .ToList();
        var failed = true;
        var clients = new List<BrokerClient>();
        try
        {
            await Task.WhenAll(nodes.Select(n => n.WaitReadyAsync(TimeSpan.FromSeconds(120))));
            // Endpoints starting at node n, then the others in turn: each reconnect goes to the next node.
            Uri[] From(int n) => [.. Enumerable.Range(0, Nodes).Select(k => nodes[(n + k) % Nodes].WsUri)];
            async Task<BrokerClient> Connect(int n, string? clientId = null)
            {
                var c = await BrokerClient.ConnectAsync(From(n), new BrokerClientOptions { ClientId = clientId, Reconnect = ClientScenario.QuickReconnect });
                clients.Add(c);
                return c;
            }

            // The first publish places the topic's actor; its node is the one killed.
            var warm = await Connect(0);
            await warm.PublishAsync(Topic, "\"warm-up\""u8.ToArray());
            var victim = await HostOfTopicActorAsync(nodes, TimeSpan.FromSeconds(30));
            output.WriteLine($"topic actor on node{victim + 1}; it will be killed");

            var readers = new List<ClientScenario.Reader>();
            for (var n = 0; n < Nodes; n++)
            {
                var c = await Connect(n);
                readers.Add(new ClientScenario.Reader($"subscriber on node{n + 1}", c, await c.SubscribeAsync(Topic), 2 * PerPublisher));
            }
            var publishers = new[]
            {
                new ClientScenario.Publisher(await Connect(victim, $"failover-a-{Guid.NewGuid():N}"), Topic, "a", PerPublisher, window: 50),
                new ClientScenario.Publisher(await Connect((victim + 1) % Nodes, $"failover-b-{Guid.NewGuid():N}"), Topic, "b", PerPublisher, window: 50),
            };
            var publisherOnVictim = new ClientScenario.States(publishers[0].Client);
            var subscriberOnVictim = new ClientScenario.States(readers[victim].Client);

            using var deadline = new CancellationTokenSource(Deadline);
            var reading = readers.Select(r => r.RunAsync(deadline.Token)).ToArray();
            var killAt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var acked = 0;
            var publishing = publishers.Select(p => p.RunAsync(() =>
            {
                if (Interlocked.Increment(ref acked) == 2 * PerPublisher / 3) killAt.TrySetResult();
            }, deadline.Token)).ToArray();

            await killAt.Task.WaitAsync(Deadline);
            nodes[victim].Kill();
            output.WriteLine($"killed node{victim + 1} (pid {nodes[victim].Pid}) after {Volatile.Read(ref acked)} acks");

            await Task.WhenAll(publishing);
            output.WriteLine($"all {2 * PerPublisher} publishes acknowledged");
            await Task.WhenAll(reading);
            output.WriteLine("every subscriber has every message");

            Assert.True(publisherOnVictim.Disconnects() > 0 && subscriberOnVictim.Disconnects() > 0, "the clients on the killed node never reconnected");
            ClientScenario.AssertExactlyOnceInOrder(log.BootstrapServers, Topic, publishers, readers, 2 * PerPublisher);
            failed = false;
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
            foreach (var node in nodes)
            {
                if (failed) output.WriteLine($"---- {node.Name} ----\n{string.Join('\n', node.Output.Split('\n').TakeLast(60))}");
                await node.DisposeAsync();
                if (!failed) File.Delete(node.LogPath);
            }
        }
    }

    /// <summary>The node whose log says it started the topic's actor (bounded wait).</summary>
    private static async Task<int> HostOfTopicActorAsync(List<BrokerProcess> nodes, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            for (var n = 0; n < nodes.Count; n++)
                if (nodes[n].Output.Contains($"Topic {Topic} ready on")) return n;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no node logged that it started the actor of {Topic}");
            await Task.Delay(100); // polling a process's log with a deadline
        }
    }
}
