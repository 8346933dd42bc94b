using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Broker.Core.Metrics;

/// <summary>
/// The node's counters and histograms, written on the hot path with Interlocked only (no locks,
/// no allocations) and rendered in the Prometheus text format on a scrape. One instance per node.
/// </summary>
public sealed class BrokerMetrics
{
    private long _messagesIn;
    private long _messagesOut;
    private long _slowConsumerCloses;
    private long _connectionsAccepted;
    private readonly ConcurrentDictionary<string, StrongBox<long>> _badInput = new(StringComparer.Ordinal);

    /// <summary>Publish request received → ack sent.</summary>
    public Histogram PublishAckLatency { get; } = new();

    /// <summary>Record timestamp in the log (set at produce) → the node's feed hands it to its subscribers.</summary>
    public Histogram DeliveryLatency { get; } = new();

    public long MessagesIn => Volatile.Read(ref _messagesIn);
    public long MessagesOut => Volatile.Read(ref _messagesOut);
    public long SlowConsumerCloses => Volatile.Read(ref _slowConsumerCloses);

    /// <summary>A publish acknowledged by the log.</summary>
    public void MessageIn() => Interlocked.Increment(ref _messagesIn);

    /// <summary>Live message frames handed to local subscribers.</summary>
    public void MessagesDelivered(int count)
    {
        if (count > 0) Interlocked.Add(ref _messagesOut, count);
    }

    public void ConnectionAccepted() => Interlocked.Increment(ref _connectionsAccepted);

    public void SlowConsumerClosed() => Interlocked.Increment(ref _slowConsumerCloses);

    /// <summary>A request or frame refused as bad input, by protocol error code (or close reason).</summary>
    public void BadInput(string code)
    {
        var box = _badInput.GetOrAdd(code, static _ => new StrongBox<long>());
        Interlocked.Increment(ref box.Value);
    }

    /// <summary>What the node reports at scrape time (gauges read from their owners).</summary>
    public sealed record Gauges(
        int Connections,
        int Subscriptions,
        int Feeds,
        long FeedLag,
        int ClusterMembersUp,
        int ClusterMembers,
        IReadOnlyList<(string Type, int Shards)> Shards);

    /// <summary>The Prometheus text exposition (format 0.0.4).</summary>
    public string Render(Gauges g)
    {
        var sb = new StringBuilder(4096);
        Gauge(sb, "broker_connections", "Open WebSocket connections on this node.", g.Connections);
        Counter(sb, "broker_connections_accepted_total", "WebSocket connections accepted by this node.", Volatile.Read(ref _connectionsAccepted));
        Gauge(sb, "broker_subscriptions", "Live subscriptions of this node's connections (feed members).", g.Subscriptions);
        Gauge(sb, "broker_feeds", "Topics this node's feed reads.", g.Feeds);
        Counter(sb, "broker_messages_in_total", "Publishes acknowledged by the log.", MessagesIn);
        Counter(sb, "broker_messages_out_total", "Live message frames delivered to local subscribers.", MessagesOut);
        Counter(sb, "broker_slow_consumer_closes_total", "Connections closed with 1013 slow_consumer.", SlowConsumerCloses);
        Header(sb, "broker_bad_input_total", "Requests and frames refused as bad input, by code.", "counter");
        foreach (var (code, box) in _badInput.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            Line(sb, "broker_bad_input_total", $"code=\"{Escape(code)}\"", Volatile.Read(ref box.Value));
        Gauge(sb, "broker_kafka_feed_lag", "Records in the log not yet read by this node's feed (sum over its topics: high watermark - feed position).", g.FeedLag);
        Gauge(sb, "broker_cluster_members", "Cluster members this node sees Up.", g.ClusterMembersUp);
        Gauge(sb, "broker_cluster_members_all", "Cluster members this node sees in any status.", g.ClusterMembers);
        Header(sb, "broker_shards", "Shards hosted by this node, by region type.", "gauge");
        foreach (var (type, shards) in g.Shards) Line(sb, "broker_shards", $"type=\"{Escape(type)}\"", shards);
        PublishAckLatency.Render(sb, "broker_publish_ack_seconds", "Publish request to ack, in seconds.");
        DeliveryLatency.Render(sb, "broker_delivery_latency_seconds", "Record timestamp (produce) to delivery by this node's feed, in seconds.");
        return sb.ToString();
    }

    private static void Header(StringBuilder sb, string name, string help, string type) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Gauge(StringBuilder sb, string name, string help, long value)
    {
        Header(sb, name, help, "gauge");
        Line(sb, name, null, value);
    }

    private static void Counter(StringBuilder sb, string name, string help, long value)
    {
        Header(sb, name, help, "counter");
        Line(sb, name, null, value);
    }

    internal static void Line(StringBuilder sb, string name, string? labels, long value) =>
        Line(sb, name, labels, value.ToString(CultureInfo.InvariantCulture));

    internal static void Line(StringBuilder sb, string name, string? labels, string value)
    {
        sb.Append(name);
        if (labels is not null) sb.Append('{').Append(labels).Append('}');
        sb.Append(' ').Append(value).Append('\n');
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    /// <summary>A fixed-bucket latency histogram (seconds), lock-free.</summary>
    public sealed class Histogram
    {
        public static readonly double[] Bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
        private readonly long[] _buckets = new long[Bounds.Length + 1];
        private long _count;
        private long _sumMicros;

        public long Count => Volatile.Read(ref _count);

        /// <summary>Observes the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/>).</summary>
        public void ObserveSince(long startTimestamp) => Observe(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);

        public void Observe(double seconds)
        {
            if (seconds < 0 || double.IsNaN(seconds)) seconds = 0;
            var i = 0;
            while (i < Bounds.Length && seconds > Bounds[i]) i++;
            Interlocked.Increment(ref _buckets[i]);
            Interlocked.Add(ref _sumMicros, (long)(seconds * 1_000_000));
            Interlocked.Increment(ref _count);
        }

        internal void Render(StringBuilder sb, string name, string help)
        {
            Header(sb, name, help, "histogram");
            long cumulative = 0;
            for (var i = 0; i < Bounds.Length; i++)
            {
                cumulative += Volatile.Read(ref _buckets[i]);
                Line(sb, name + "_bucket", $"le=\"{Bounds[i].ToString(CultureInfo.InvariantCulture)}\"", cumulative);
            }
            cumulative += Volatile.Read(ref _buckets[Bounds.Length]);
            Line(sb, name + "_bucket", "le=\"+Inf\"", cumulative);
            Line(sb, name + "_sum", null, (Volatile.Read(ref _sumMicros) / 1_000_000.0).ToString("0.######", CultureInfo.InvariantCulture));
            Line(sb, name + "_count", null, cumulative);
        }
    }
}
