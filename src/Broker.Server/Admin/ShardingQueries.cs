using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;

namespace Broker.Server.Admin;

/// <summary>
/// Questions to the shard region of one type on every member, each asked directly (at
/// <c>/system/sharding/&lt;type&gt;</c> of the member's address) with its own timeout, so that the
/// answer says which regions answered and which did not. <c>GetClusterShardingStats</c> goes through
/// the shard coordinator instead and answers an empty result when the coordinator is unknown (it
/// is moving after a node loss) or when any one region is too slow — an empty table that looked
/// as if all were well.
/// </summary>
internal static class ShardingQueries
{
    public sealed record RegionAnswer<T>(Address Address, T? Answer, string? Problem) where T : class;

    /// <summary>Members expected to host a region: not yet joining, not yet gone.</summary>
    public static IReadOnlyList<Member> RegionHosts(Cluster cluster) =>
        [.. cluster.State.Members
            .Where(m => m.Status is MemberStatus.WeaklyUp or MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting)
            .OrderBy(m => m.Address.ToString(), StringComparer.Ordinal)];

    public static async Task<IReadOnlyList<RegionAnswer<T>>> AskEveryRegionAsync<T>(ActorSystem system, string type, object query, TimeSpan timeout)
        where T : class
    {
        var cluster = Cluster.Get(system);
        var unreachable = cluster.State.Unreachable.Select(m => m.Address).ToHashSet();
        var asks = RegionHosts(cluster).Select(async member =>
        {
            var region = system.ActorSelection(new RootActorPath(member.Address) / "system" / "sharding" / Uri.EscapeDataString(type));
            try
            {
                return new RegionAnswer<T>(member.Address, await region.Ask<T>(query, timeout), null);
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                var why = unreachable.Contains(member.Address) ? $"{member.Status}, unreachable" : member.Status.ToString();
                return new RegionAnswer<T>(member.Address, null, $"{member.Address}: the {type} region did not answer within {timeout.TotalSeconds:0.#}s ({why})");
            }
        });
        return await Task.WhenAll(asks);
    }
}
