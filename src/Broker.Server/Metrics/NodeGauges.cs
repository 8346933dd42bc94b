using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Broker.Core.Connections;
using Broker.Core.Log;
using Broker.Core.Metrics;

namespace Broker.Server.Metrics;

/// <summary>
/// The node's gauges, as observable instruments on the broker's Meter. Connections and cluster
/// membership are read directly when the exporter collects; subscriptions, feeds, feed lag and
/// shards need an answer from the feed thread and the shard regions, so they come from a snapshot
/// that <see cref="RefreshAsync"/> takes (awaited before every /metrics scrape; for a periodic
/// exporter such as OTLP a collection starts a refresh and reports the previous snapshot).
/// </summary>
public sealed class NodeGauges
{
    /// <summary>
    /// A collection that finds the snapshot older than this starts the next refresh (a /metrics scrape
    /// has just refreshed it). A constant, not a setting: it only keeps the instruments of one
    /// collection from refreshing again; any value between that and a scrape interval behaves the same.
    /// </summary>
    private static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(1);

    private readonly ConnectionRegistry _registry;
    private readonly FeedHub _feeds;
    private readonly IServiceProvider _services;
    private readonly TimeSpan _timeout;
    private readonly Lock _gate = new();
    private Task _refreshing = Task.CompletedTask;
    private Snapshot _snapshot = Snapshot.Empty;

    /// <summary>What the last refresh saw; null parts did not answer within the timeout and are left out of that collection.</summary>
    private sealed record Snapshot(long TakenAt, IReadOnlyList<FeedState>? Feeds, IReadOnlyList<(string Type, int Shards)> Shards)
    {
        public static readonly Snapshot Empty = new(0, null, []);
    }

    public NodeGauges(BrokerMetrics metrics, ConnectionRegistry registry, FeedHub feeds, IServiceProvider services, TimeSpan timeout)
    {
        _registry = registry;
        _feeds = feeds;
        _services = services;
        _timeout = timeout;
        var meter = metrics.Meter;
        meter.CreateObservableGauge("broker.connections", () => _registry.Count, "{connection}", "Open WebSocket connections on this node.");
        meter.CreateObservableGauge("broker.subscriptions", () => FromFeeds(f => f.Sum(s => (long)s.Subscribers)), "{subscription}", "Live subscriptions of this node's connections (feed members).");
        meter.CreateObservableGauge("broker.feeds", () => FromFeeds(f => f.Count), "{topic}", "Topics this node's feed reads.");
        meter.CreateObservableGauge("broker.kafka.feed_lag", () => FromFeeds(f => f.Sum(s => s.Lag)), "{record}",
            "Records in the log not yet read by this node's feed (sum over its topics: high watermark - feed position).");
        meter.CreateObservableGauge("broker.cluster.members", () => FromCluster(s => s.Members.Count(m => m.Status == MemberStatus.Up)), "{member}",
            "Cluster members this node sees Up.");
        meter.CreateObservableGauge("broker.cluster.members_all", () => FromCluster(s => s.Members.Count), "{member}",
            "Cluster members this node sees in any status.");
        meter.CreateObservableGauge("broker.cluster.unreachable", () => FromCluster(s => s.Unreachable.Count), "{member}",
            "Cluster members this node sees as unreachable.");
        meter.CreateObservableGauge("broker.shards", ObserveShards, "{shard}", "Shards hosted by this node, by region type.");
    }

    /// <summary>Takes a new snapshot (one at a time: callers during a refresh share it).</summary>
    public Task RefreshAsync()
    {
        lock (_gate)
        {
            if (_refreshing.IsCompleted) _refreshing = RefreshCoreAsync();
            return _refreshing;
        }
    }

    private async Task RefreshCoreAsync()
    {
        IReadOnlyList<FeedState>? feeds;
        try
        {
            feeds = await _feeds.SnapshotAsync().WaitAsync(_timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            feeds = null;
        }
        var shards = new List<(string, int)>();
        if (_services.GetService<ActorSystem>() is { } system)
        {
            var sharding = ClusterSharding.Get(system);
            var types = sharding.ShardTypeNames.OrderBy(t => t, StringComparer.Ordinal).ToList();
            var answers = await Task.WhenAll(types.Select(async type =>
            {
                try
                {
                    var state = await sharding.ShardRegion(type).Ask<CurrentShardRegionState>(GetShardRegionState.Instance, _timeout).ConfigureAwait(false);
                    return (type, state.Shards.Count);
                }
                catch (AskTimeoutException)
                {
                    return (type, -1); // a region that does not answer in time is left out of this collection
                }
            })).ConfigureAwait(false);
            shards.AddRange(answers.Where(a => a.Item2 >= 0));
        }
        _snapshot = new Snapshot(Stopwatch.GetTimestamp(), feeds, shards);
    }

    /// <summary>The last snapshot; one older than <see cref="StaleAfter"/> starts the next refresh (reported at the next collection).</summary>
    private Snapshot Current()
    {
        var s = _snapshot;
        if (Stopwatch.GetElapsedTime(s.TakenAt) > StaleAfter) _ = RefreshAsync();
        return s;
    }

    private IEnumerable<Measurement<long>> FromFeeds(Func<IReadOnlyList<FeedState>, long> value) =>
        Current().Feeds is { } feeds ? [new Measurement<long>(value(feeds))] : [];

    private IEnumerable<Measurement<int>> FromCluster(Func<ClusterEvent.CurrentClusterState, int> value) =>
        _services.GetService<ActorSystem>() is { } system ? [new Measurement<int>(value(Cluster.Get(system).State))] : [];

    private IEnumerable<Measurement<int>> ObserveShards() =>
        Current().Shards.Select(s => new Measurement<int>(s.Shards, new KeyValuePair<string, object?>("type", s.Type)));
}
