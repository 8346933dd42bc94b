using Broker.Client;
using Broker.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.IntegrationTests.Client;

/// <summary>
/// A broker process is killed (SIGKILL) mid-stream and started again on the same ports; the
/// standalone Kafka-protocol log (a Broker.DevKafka process) and the SQLite session store keep the
/// history. The .NET clients reconnect by themselves: the publisher's unacknowledged publishes are
/// resent and written once, a plain subscriber resumes with <c>since</c>, and a durable session is
/// restored by the broker from its last commit without the application seeing a message twice.
/// </summary>
public sealed class ClientProcessRestartTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task After_the_broker_process_is_killed_and_restarted_clients_lose_nothing_repeat_nothing_and_the_session_is_restored()
    {
        const string topic = "client.restart";
        const int count = 1500;
        await using var log = await DevKafkaProcess.StartAsync();
        var httpPort = TestCluster.FreePort();
        var clusterPort = TestCluster.FreePort();
        var store = Path.Combine(Path.GetTempPath(), $"broker-client-restart-{Guid.NewGuid():N}");
        var environment = new Dictionary<string, string> { ["BROKER_DB_PATH"] = Path.Combine(store, "broker.db") };
        string[] config = ["broker.shutdown-deadline = 5s", "akka.loglevel = INFO"];
        BrokerProcess Start(string name) =>
            BrokerProcess.Start(name, httpPort, clusterPort, [BrokerProcess.SeedAddress(clusterPort)], log.BootstrapServers, log.AdminAddress, config, environment);

        var first = Start("before-kill");
        BrokerProcess? second = null;
        var failed = true;
        try
        {
            await first.WaitReadyAsync(TimeSpan.FromSeconds(120));
            var uri = first.WsUri;
            await using var publisher = await BrokerClient.ConnectAsync(uri, new BrokerClientOptions
            {
                ClientId = $"restart-pub-{Guid.NewGuid():N}", // kept by the application: resends are recognised by any broker process
                Reconnect = ClientScenario.QuickReconnect,
            });
            await using var plain = await BrokerClient.ConnectAsync(uri, new BrokerClientOptions { Reconnect = ClientScenario.QuickReconnect });
            await using var durable = await BrokerClient.ConnectAsync(uri, new BrokerClientOptions
            {
                Session = $"restart-{Guid.NewGuid():N}",
                AutoCommit = true,
                AutoCommitInterval = TimeSpan.FromMilliseconds(200),
                Reconnect = ClientScenario.QuickReconnect,
            });
            var states = new[] { publisher, plain, durable }.Select(c => new ClientScenario.States(c)).ToArray();
            var readers = new[]
            {
                new ClientScenario.Reader("plain", plain, await plain.SubscribeAsync(topic), count),
                new ClientScenario.Reader("session", durable, await durable.SubscribeAsync(topic), count),
            };
            var pub = new ClientScenario.Publisher(publisher, topic, "a", count, window: 50);

            using var deadline = new CancellationTokenSource(Deadline);
            var reading = readers.Select(r => r.RunAsync(deadline.Token)).ToArray();
            var killAt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var acked = 0;
            var publishing = pub.RunAsync(() =>
            {
                if (Interlocked.Increment(ref acked) == count / 3) killAt.TrySetResult();
            }, deadline.Token);

            await killAt.Task.WaitAsync(Deadline);
            first.Kill();
            output.WriteLine($"killed the broker (pid {first.Pid}) after {Volatile.Read(ref acked)} acks");
            second = Start("after-restart");
            await second.WaitReadyAsync(TimeSpan.FromSeconds(120));
            output.WriteLine($"restarted after {Volatile.Read(ref acked)} acks");

            await publishing;
            await Task.WhenAll(reading);

            Assert.All(states, s => Assert.True(s.Disconnects(1006) > 0, "every client lost its connection to the killed process"));
            Assert.InRange(pub.Acked.Count, count, count);
            // The session was restored by the restarted broker (no subscribe sent), from its last commit.
            Assert.Contains(readers[1].Resumes, e => e.RestoredBySession);
            ClientScenario.AssertExactlyOnceInOrder(log.BootstrapServers, topic, [pub], readers, count);
            failed = false;
        }
        finally
        {
            foreach (var node in new[] { first, second })
            {
                if (node is null) continue;
                if (failed) output.WriteLine($"---- {node.Name} ----\n{string.Join('\n', node.Output.Split('\n').TakeLast(60))}");
                await node.DisposeAsync();
                if (!failed) File.Delete(node.LogPath);
            }
            try { Directory.Delete(store, recursive: true); } catch (IOException) { /* best effort */ }
        }
    }
}
