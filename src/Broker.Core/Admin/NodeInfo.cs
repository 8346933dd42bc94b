using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Akka.Actor;
using Broker.Core.Connections;
using Broker.Core.Log;
using Broker.Core.Topics;

namespace Broker.Core.Admin;

/// <summary>The local subscriber count of one topic on one node, and the Kafka topic it reads.</summary>
public sealed record TopicSubscribers(string Topic, string KafkaTopic, int Subscribers);

/// <summary>Messages of the per-node information actor (<see cref="NodeInfoActor"/>), asked by the admin API of any node.</summary>
public static class NodeInfo
{
    /// <summary>The well-known name of the actor under <c>/user</c> on every node.</summary>
    public const string ActorName = "broker-node-info";

    /// <summary>Asks a node for its connections and local subscriptions; answered with <see cref="NodeStatus"/>.</summary>
    public sealed record GetNodeStatus : IBrokerMessage
    {
        public static readonly GetNodeStatus Instance = new();
    }

    /// <summary>A node's view of itself.</summary>
    public sealed record NodeStatus(string Address, int Connections, bool Draining, IReadOnlyList<TopicSubscribers> Topics) : IBrokerMessage;

    /// <summary>Tells a node to stop accepting WebSockets and close its live ones with 1001; answered with <see cref="Drained"/>.</summary>
    public sealed record DrainNode(int TimeoutMs) : IBrokerMessage;

    /// <summary>The node closed (or tried to close, within the timeout) <paramref name="Closed"/> connections; <paramref name="Remaining"/> are still open.</summary>
    public sealed record Drained(string Address, int Closed, int Remaining) : IBrokerMessage;
}

/// <summary>
/// One per node at <c>/user/broker-node-info</c>: answers what only this node knows (its WebSocket
/// connections, its local subscribers per topic) and drains it on request.
/// </summary>
public sealed class NodeInfoActor : ReceiveActor
{
    public NodeInfoActor(ConnectionRegistry registry, FeedHub feeds, string selfAddress)
    {
        ReceiveAsync<NodeInfo.GetNodeStatus>(async _ =>
        {
            var sender = Sender;
            var feedStates = await feeds.SnapshotAsync().ConfigureAwait(false);
            var topics = feedStates.Select(f => new TopicSubscribers(f.Topic, f.KafkaTopic, f.Subscribers)).ToList();
            sender.Tell(new NodeInfo.NodeStatus(selfAddress, registry.Count, registry.IsDraining, topics));
        });
        ReceiveAsync<NodeInfo.DrainNode>(async d =>
        {
            var sender = Sender;
            var before = registry.Count;
            await registry.DrainAsync(Broker.Protocol.CloseCodes.GoingAway, "node draining", TimeSpan.FromMilliseconds(Math.Max(0, d.TimeoutMs))).ConfigureAwait(false);
            var remaining = registry.Count;
            sender.Tell(new NodeInfo.Drained(selfAddress, Math.Max(0, before - remaining), remaining));
        });
    }

    public static Props Props(ConnectionRegistry registry, FeedHub feeds, string selfAddress) =>
        Akka.Actor.Props.Create(() => new NodeInfoActor(registry, feeds, selfAddress));
}
