using Broker.Client;
using Broker.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.IntegrationTests.Client;

/// <summary>
/// The .NET client across the broker's "reconnect and resume" closes on real brokers: 1013
/// slow_consumer (a tiny outbound buffer overflows under a burst) and 1001 (a node drained through
/// the admin API while a publisher and a subscriber are on it). No gap, no duplicate, written once.
/// </summary>
public sealed class ClientResumeTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // ?batch=1: the broker coalesces queued frames into arrays
    public async Task After_1013_slow_consumer_closes_the_subscriber_resumes_with_no_gap_and_no_duplicate(bool batch)
    {
        const string topic = "client.slow";
        const int count = 3000;
        // Four frames: a burst the feed hands over at once overflows it, so the subscriber is closed
        // with 1013 again and again while the publisher runs; each time it resumes after its last message.
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.websocket.outbound-buffer-frames"] = "4",
        });
        var options = new BrokerClientOptions { Reconnect = ClientScenario.QuickReconnect };
        await using var subscriber = await BrokerClient.ConnectAsync(broker.WsUri, new BrokerClientOptions { Batch = batch, Reconnect = ClientScenario.QuickReconnect });
        var states = new ClientScenario.States(subscriber);
        await using var publisher = await BrokerClient.ConnectAsync(broker.WsUri, options);
        var reader = new ClientScenario.Reader("subscriber", subscriber, await subscriber.SubscribeAsync(topic), count);
        var pub = new ClientScenario.Publisher(publisher, topic, "a", count, window: 200);

        using var deadline = new CancellationTokenSource(Deadline);
        var reading = reader.RunAsync(deadline.Token);
        await pub.RunAsync(() => { }, deadline.Token);
        await reading;
        output.WriteLine($"subscriber: {states.Disconnects(1013)} closes with 1013, {states.Disconnects()} disconnects");

        Assert.True(states.Disconnects(1013) > 0, "the subscriber was never closed as a slow consumer");
        ClientScenario.AssertExactlyOnceInOrder(broker.KafkaBootstrap, topic, [pub], [reader], count);
    }

    [Fact]
    public async Task After_a_1001_drain_publisher_and_subscriber_continue_on_the_other_node_with_every_message_once_in_order()
    {
        var acked = 0;
        const string topic = "client.drain";
        const int count = 2000;
        await using var cluster = await TestCluster.StartAsync(2);
        Uri[] endpoints = [cluster.Nodes[0].WsUri, cluster.Nodes[1].WsUri]; // both start on node 0
        var options = new BrokerClientOptions { Reconnect = ClientScenario.QuickReconnect };
        await using var subscriber = await BrokerClient.ConnectAsync(endpoints, options);
        await using var publisher = await BrokerClient.ConnectAsync(endpoints, options);
        var subStates = new ClientScenario.States(subscriber);
        var pubStates = new ClientScenario.States(publisher);
        var ackedAtClose = -1;
        publisher.StateChanged += (_, e) =>
        {
            if (e.CloseCode == 1001) Interlocked.CompareExchange(ref ackedAtClose, Volatile.Read(ref acked), -1);
        };
        var reader = new ClientScenario.Reader("subscriber", subscriber, await subscriber.SubscribeAsync(topic), count);
        var pub = new ClientScenario.Publisher(publisher, topic, "a", count, window: 20);

        using var deadline = new CancellationTokenSource(Deadline);
        var reading = reader.RunAsync(deadline.Token);
        var drainAt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var publishing = pub.RunAsync(() =>
        {
            if (Interlocked.Increment(ref acked) == count / 3) drainAt.TrySetResult();
        }, deadline.Token);

        await drainAt.Task.WaitAsync(Deadline);
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) })
        {
            var drained = await http.PostAsJsonAsync(cluster.Nodes[1].AdminAddress + "/admin/nodes/drain", new { address = cluster.Nodes[0].ClusterAddress });
            Assert.True(drained.IsSuccessStatusCode, await drained.Content.ReadAsStringAsync());
        }
        await publishing;
        await reading;
        output.WriteLine($"the publisher was closed with 1001 after {ackedAtClose} of {count} acks");

        Assert.True(pubStates.Disconnects(1001) > 0 && subStates.Disconnects(1001) > 0, "the drain did not close both clients with 1001");
        Assert.InRange(ackedAtClose, 1, count - 1); // while publishing
        Assert.Equal(cluster.Nodes[1].WsUri.Port, publisher.Endpoint.Port);
        Assert.Equal(cluster.Nodes[1].WsUri.Port, subscriber.Endpoint.Port);
        ClientScenario.AssertExactlyOnceInOrder(cluster.Kafka.BootstrapServers, topic, [pub], [reader], count);
    }
}
