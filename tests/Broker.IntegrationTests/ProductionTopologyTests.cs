using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.Client;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.IntegrationTests;

/// <summary>
/// The docker-compose topology as processes on loopback: a standalone Kafka-protocol log (the
/// mock cluster and its topic endpoint, in the test process), three broker processes that form
/// one cluster, and Debian's nginx running deploy/nginx.conf (upstream rewritten to the nodes'
/// ports) in front of them. PostgreSQL is left out: the topic path does not touch it.
/// </summary>
public sealed class ProductionTopologyTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact(Timeout = 300_000)]
    public async Task Clients_through_nginx_reach_each_other_and_a_client_of_a_stopped_node_reconnects_through_nginx_to_a_live_one()
    {
        using var kafka = MockKafkaCluster.Start("127.0.0.1", 0);
        using var admin = new AdminEndpoint(kafka, "127.0.0.1", 0);
        var ports = DistinctFreePorts(7);
        var seeds = ports.Take(3).Select(BrokerProcess.SeedAddress).ToArray();
        string[] config = ["broker.cluster.split-brain-resolver.stable-after = 3s", "broker.shutdown-deadline = 5s", "akka.loglevel = WARNING"];
        var nodes = new List<BrokerProcess>();
        NginxProcess? proxy = null;
        try
        {
            for (var n = 0; n < 3; n++)
                nodes.Add(BrokerProcess.Start($"node{n + 1}", ports[3 + n], ports[n], seeds, kafka.BootstrapServers, admin.Address, config));
            await Task.WhenAll(nodes.Select(n => n.WaitReadyAsync(TimeSpan.FromSeconds(120))));
            await using var nginx = await NginxProcess.StartAsync(
                Path.Combine(Repository.Root(), "deploy", "nginx.conf"), ports[6], nodes.Select(n => n.HttpPort), Wait);
            proxy = nginx;
            output.WriteLine($"nginx on {nginx.HttpAddress}, nodes on {string.Join(", ", nodes.Select(n => n.HttpPort))}");

            // Plain HTTP through nginx: the dashboard's endpoint of whichever node answers.
            using (var http = new HttpClient { Timeout = Wait })
            {
                var cluster = JsonNode.Parse(await http.GetStringAsync(nginx.HttpAddress + "/api/cluster"))!;
                Assert.Equal(3, cluster["members"]!.AsArray().Count);
            }

            // Three subscribers and a publisher, all Broker.Clients through nginx, wherever it put them.
            const string topic = "edge.chat";
            var subscribers = new List<(BrokerClient Client, BrokerSubscription Sub)>();
            try
            {
                for (var i = 0; i < 3; i++)
                {
                    var c = await BrokerClients.ConnectAsync([nginx.WsUri]);
                    subscribers.Add((c, await c.SubscribeWithinAsync(topic)));
                }
                var spread = await ConnectionsPerNodeAsync(nodes, expectedTotal: 3);
                output.WriteLine($"subscribers per node: {string.Join(", ", spread)}");
                await using var publisher = await BrokerClients.ConnectAsync([nginx.WsUri]);
                var pos = await publisher.PublishJsonAsync(topic, new { text = "through nginx" });
                foreach (var (_, s) in subscribers)
                {
                    var m = await s.NextAsync(Wait);
                    Assert.Equal(pos, m.Pos);
                    Assert.Equal("through nginx", m.Str("text"));
                }
            }
            finally
            {
                foreach (var (c, _) in subscribers) await c.DisposeAsync();
            }

            // One client through nginx; find its node (by the nodes' own connection counts) and stop it.
            const string failover = "edge.failover";
            await using var client = await BrokerClients.ConnectAsync([nginx.WsUri]);
            var closedWith1001 = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var resubscribed = new TaskCompletionSource<SubscriptionResumedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
            client.StateChanged += (_, e) =>
            {
                output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} client: {e.State} {e.CloseCode} {e.Exception?.Message}");
                if (e.State == BrokerConnectionState.Disconnected && e.CloseCode == (int)WebSocketCloseStatus.EndpointUnavailable) closedWith1001.TrySetResult();
            };
            var sub = await client.SubscribeWithinAsync(failover);
            sub.Resumed += (_, e) =>
            {
                if (closedWith1001.Task.IsCompleted) resubscribed.TrySetResult(e);
            };
            var counts = await ConnectionsPerNodeAsync(nodes, expectedTotal: 1);
            var victim = Array.IndexOf(counts, 1);
            output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} the client is on {nodes[victim].Name}; stopping it");
            Assert.Equal(0, await nodes[victim].StopAsync(TimeSpan.FromSeconds(60)));
            output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} stopped");
            await closedWith1001.Task.WaitAsync(Wait); // 1001: reconnect elsewhere

            // The client reconnects through nginx by itself, resumes with since, and gets what is published next.
            var resumed = await resubscribed.Task.WaitAsync(TimeSpan.FromSeconds(90));
            Assert.True(resumed.Recovered);
            var live = nodes.Where(n => !n.HasExited).ToArray();
            Assert.Equal(2, live.Length);
            Assert.Equal(1, (await ConnectionsPerNodeAsync(live, expectedTotal: 1)).Sum());

            await using var late = await BrokerClients.ConnectAsync([nginx.WsUri]);
            string after;
            using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(90))) // unavailable while the cluster recovers: the client resends
                after = (await late.PublishAsync(failover, JsonSerializer.SerializeToElement(new { text = "after the stop" }), cancellationToken: deadline.Token)).Pos;
            var m2 = await sub.NextAsync(Wait);
            Assert.Equal(after, m2.Pos);
            Assert.Equal("after the stop", m2.Str("text"));
            Assert.False(m2.AfterGap);
        }
        catch
        {
            foreach (var n in nodes) output.WriteLine($"--- {n.Name} ---\n{n.Output}");
            if (proxy is not null) output.WriteLine($"--- nginx ---\n{proxy.Output}");
            throw;
        }
        finally
        {
            foreach (var n in nodes) await n.DisposeAsync();
        }
    }

    /// <summary>Each node's open WebSocket connections (its own /api/cluster), once they add up to <paramref name="expectedTotal"/>.</summary>
    private static async Task<int[]> ConnectionsPerNodeAsync(IReadOnlyList<BrokerProcess> nodes, int expectedTotal)
    {
        using var http = new HttpClient { Timeout = Wait };
        var deadline = DateTime.UtcNow + Wait;
        while (true)
        {
            var counts = new int[nodes.Count];
            for (var i = 0; i < nodes.Count; i++)
                counts[i] = (int)JsonNode.Parse(await http.GetStringAsync(nodes[i].HttpAddress + "/api/cluster"))!["connections"]!;
            if (counts.Sum() == expectedTotal) return counts;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"connections per node {string.Join(",", counts)}, expected {expectedTotal} in all");
            await Task.Delay(100);
        }
    }

    private static int[] DistinctFreePorts(int count)
    {
        var ports = new HashSet<int>();
        while (ports.Count < count) ports.Add(TestCluster.FreePort());
        return [.. ports];
    }
}
