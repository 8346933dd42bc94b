using System.Net.WebSockets;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Broker.Client;
using Broker.Core.Serialization;
using Broker.Core.Topics;
using Broker.IntegrationTests.Infrastructure;
using Broker.Server.Hosting;

namespace Broker.IntegrationTests;

/// <summary>A node leaving a three-node cluster on SIGTERM (host stop): clients move, shards move, nothing is lost or written twice.</summary>
public sealed class GracefulLeaveTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync(3);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static IActorRef Region(TestBroker node) => node.App.Services.GetRequiredService<IRequiredActor<TopicRegion>>().ActorRef;

    /// <summary>The node whose shard region hosts <paramref name="topic"/>'s actor.</summary>
    private async Task<TestBroker> HostOf(string topic)
    {
        foreach (var node in _cluster.Nodes)
        {
            var state = await Region(node).Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(10));
            if (state.Shards.Any(s => s.EntityIds.Contains(topic))) return node;
        }
        throw new InvalidOperationException($"no node hosts {topic}");
    }

    [Fact]
    public async Task Cross_node_messages_use_the_broker_serializer()
    {
        var system = _cluster.Nodes[0].App.Services.GetRequiredService<ActorSystem>();
        foreach (var message in new object[] { new TopicCommands.Publish("t", [1], null, null, null), new TopicCommands.PublishAck("t", "AQEB"), new TopicCommands.PublishRejected("t", "c", "m") })
            Assert.IsType<BrokerSerializer>(system.Serialization.FindSerializerFor(message));
    }

    [Fact]
    public async Task Leaving_node_closes_its_clients_with_1001_they_resume_elsewhere_and_its_topics_move()
    {
        const string topic = "leave.topic";
        string firstPos;
        await using (var first = await _cluster.Nodes[0].ConnectAsync("?client=leave-publisher"))
            firstPos = await first.PublishAsync(topic, new { i = 0 }, "m0"); // the topic actor now lives somewhere
        var leaving = await HostOf(topic);
        var others = _cluster.Nodes.Where(n => n != leaving).ToArray();
        // The publisher (same identity) uses a node that stays; it resends m1 by hand with its request
        // id, a protocol-level retry (Broker.Client resends with ids of its own).
        await using var pub = await others[0].ConnectAsync("?client=leave-publisher");
        var stays = others[1];

        // The subscriber is a Broker.Client on the leaving node; its next endpoint is a node that stays.
        var closedWith1001 = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resumes = new System.Collections.Concurrent.ConcurrentQueue<SubscriptionResumedEventArgs>();
        await using var subscriber = await BrokerClients.ConnectAsync([leaving.WsUri, stays.WsUri]);
        subscriber.StateChanged += (_, e) =>
        {
            if (e.State == BrokerConnectionState.Disconnected && e.CloseCode == (int)WebSocketCloseStatus.EndpointUnavailable) closedWith1001.TrySetResult();
        };
        var sub = await subscriber.SubscribeWithinAsync(topic, new SubscribeOptions { Since = firstPos });
        sub.Resumed += (_, e) => resumes.Enqueue(e);
        var p1 = await pub.PublishAsync(topic, new { i = 1 }, "m1");
        Assert.Equal(p1, (await sub.NextAsync()).Pos);

        // SIGTERM on the node that hosts the topic and the subscriber.
        var stopping = leaving.App.StopAsync();
        await closedWith1001.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await stopping.WaitAsync(TimeSpan.FromSeconds(60));
        _cluster.Nodes.Remove(leaving);
        await leaving.App.DisposeAsync();
        await _cluster.AwaitUpAsync(2);

        // Publishing goes on through the actor that moved; a retry of m1 is recognised there.
        Assert.Equal(p1, await pub.PublishAsync(topic, new { i = 1 }, "m1"));
        var p2 = await pub.PublishAsync(topic, new { i = 2 }, "m2");
        Assert.NotEqual(leaving, await HostOf(topic));

        // The subscriber resumed on the other node from the last position it received: m2, once.
        var m2 = await sub.NextAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(p2, m2.Pos);
        Assert.Equal(2, m2.Int("i"));
        Assert.False(m2.AfterGap);
        Assert.Equal(stays.WsUri, subscriber.Endpoint);
        Assert.Contains(resumes, e => e.Recovered == true);
        Assert.DoesNotContain(resumes, e => e.Recovered == false);
        await sub.AssertNothingMoreAsync(subscriber);
        Assert.Equal(["m0", "m1", "m2"], ClusterTests.RequestIds(_cluster.Kafka.BootstrapServers, topic));
    }
}
