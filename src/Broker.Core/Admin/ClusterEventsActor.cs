using System.Threading.Channels;
using Akka.Actor;
using Akka.Cluster;

namespace Broker.Core.Admin;

/// <summary>
/// One membership or reachability change as a node saw it: <paramref name="Event"/> is the Akka
/// event's name (MemberUp, MemberLeft, MemberExited, MemberDowned, MemberRemoved, UnreachableMember,
/// ReachableMember, LeaderChanged, …), <paramref name="Address"/> the member (or the new leader,
/// null when there is none), <paramref name="Previous"/> the status a removed member had.
/// </summary>
public sealed record ClusterEventNotice(DateTimeOffset At, string Event, string? Address, string? Status, IReadOnlyList<string> Roles, string? Previous = null);

/// <summary>
/// Subscribes to this node's cluster events (the current state first, as events) and writes each
/// into <paramref name="writer"/>, until it is stopped. One per <c>brokerctl cluster tail</c>; a
/// reader that falls behind by the channel's capacity gets its channel completed with an error.
/// </summary>
public sealed class ClusterEventsActor : ReceiveActor
{
    private readonly ChannelWriter<ClusterEventNotice> _writer;

    public ClusterEventsActor(ChannelWriter<ClusterEventNotice> writer)
    {
        _writer = writer;
        Receive<ClusterEvent.IMemberEvent>(e => Write(new ClusterEventNotice(DateTimeOffset.UtcNow, e.GetType().Name,
            e.Member.Address.ToString(), e.Member.Status.ToString(), [.. e.Member.Roles.Order(StringComparer.Ordinal)],
            e is ClusterEvent.MemberRemoved removed ? removed.PreviousStatus.ToString() : null)));
        Receive<ClusterEvent.ReachabilityEvent>(e => Write(new ClusterEventNotice(DateTimeOffset.UtcNow, e.GetType().Name,
            e.Member.Address.ToString(), e.Member.Status.ToString(), [.. e.Member.Roles.Order(StringComparer.Ordinal)])));
        Receive<ClusterEvent.LeaderChanged>(e => Write(new ClusterEventNotice(DateTimeOffset.UtcNow, nameof(ClusterEvent.LeaderChanged),
            e.Leader?.ToString(), null, [])));
    }

    protected override void PreStart() => Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
        typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.LeaderChanged));

    protected override void PostStop()
    {
        Cluster.Get(Context.System).Unsubscribe(Self);
        _writer.TryComplete();
    }

    private void Write(ClusterEventNotice notice)
    {
        if (_writer.TryWrite(notice)) return;
        _writer.TryComplete(new InvalidOperationException("the reader fell behind the node's cluster events; start `cluster tail` again"));
        Context.Stop(Self);
    }

    public static Props Props(ChannelWriter<ClusterEventNotice> writer) => Akka.Actor.Props.Create(() => new ClusterEventsActor(writer));
}
