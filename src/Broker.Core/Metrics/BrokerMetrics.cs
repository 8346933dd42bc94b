using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Broker.Core.Metrics;

/// <summary>
/// The node's counters and latency histograms: instruments of the <see cref="Meter"/> named
/// <see cref="MeterName"/> (System.Diagnostics.Metrics), exported by whatever listens to it
/// (OpenTelemetry's Prometheus endpoint and OTLP exporter in Broker.Server, <c>dotnet-counters</c>).
/// Counters are <see cref="Interlocked"/> fields that observable counters read at collection time:
/// the hot path pays one interlocked add, no listener dispatch, no allocation, and every counter is
/// exported (at 0) from the first collection. Latencies are <see cref="Histogram{T}"/> records with
/// no tags. Gauges (connections, subscriptions, shards, …) are observable instruments the host adds
/// to <see cref="Meter"/>.
/// </summary>
public sealed class BrokerMetrics
{
    /// <summary>The name of the broker's Meter; the exporters enable it by this name.</summary>
    public const string MeterName = "Broker";

    /// <summary>Bucket bounds (seconds) of the latency histograms, given to the exporter as advice.</summary>
    public static readonly IReadOnlyList<double> LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Metrics without a host (unit tests, components built without metrics): one shared set, never exported.</summary>
    private static readonly Lazy<BrokerMetrics> Detached = new(() => new BrokerMetrics(new Meter(MeterName)));

    private readonly Counts _counts;

    /// <summary>The counters' values; one instance per meter.</summary>
    private sealed class Counts
    {
        public long MessagesIn;
        public long MessagesOut;
        public long ConnectionsAccepted;
        public long SlowConsumerCloses;
        public readonly ConcurrentDictionary<string, StrongBox<long>> BadInput = new(StringComparer.Ordinal);
    }

    /// <summary>
    /// The node's metrics on a Meter created by the host's <paramref name="meterFactory"/>: the
    /// host's listeners enable it for that host only, so several nodes in one process (the tests)
    /// each export their own numbers.
    /// </summary>
    public BrokerMetrics(IMeterFactory meterFactory) : this(meterFactory.Create(new MeterOptions(MeterName)))
    {
    }

    /// <summary>Metrics that nothing exports (shared by every instance made this way).</summary>
    public BrokerMetrics() : this(Detached.Value)
    {
    }

    private BrokerMetrics(BrokerMetrics shared)
    {
        Meter = shared.Meter;
        _counts = shared._counts;
        PublishAckLatency = shared.PublishAckLatency;
        DeliveryLatency = shared.DeliveryLatency;
    }

    private BrokerMetrics(Meter meter)
    {
        Meter = meter;
        var c = _counts = new Counts();
        // Names use OpenTelemetry's dots; the Prometheus exporter turns them into the documented
        // broker_* names (dots → underscores, `_total` on counters, `_seconds` from the unit "s";
        // units in braces are annotations and add nothing to the name).
        meter.CreateObservableCounter("broker.messages.in", () => Volatile.Read(ref c.MessagesIn), "{message}", "Publishes acknowledged by the log.");
        meter.CreateObservableCounter("broker.messages.out", () => Volatile.Read(ref c.MessagesOut), "{message}", "Live message frames delivered to local subscribers.");
        meter.CreateObservableCounter("broker.connections.accepted", () => Volatile.Read(ref c.ConnectionsAccepted), "{connection}", "WebSocket connections accepted by this node.");
        meter.CreateObservableCounter("broker.slow_consumer.closes", () => Volatile.Read(ref c.SlowConsumerCloses), "{connection}", "Connections closed with 1013 slow_consumer.");
        meter.CreateObservableCounter("broker.bad_input", () => c.BadInput.Select(kv =>
                new Measurement<long>(Volatile.Read(ref kv.Value.Value), new KeyValuePair<string, object?>("code", kv.Key))),
            "{request}", "Requests and frames refused as bad input, by code.");
        PublishAckLatency = new Histogram(meter, "broker.publish_ack", "Publish request to ack, in seconds.");
        DeliveryLatency = new Histogram(meter, "broker.delivery_latency", "Record timestamp (produce) to delivery by this node's feed, in seconds.");
    }

    /// <summary>The Meter the instruments belong to; the host adds its observable gauges to it.</summary>
    public Meter Meter { get; }

    /// <summary>Publish request received → ack sent.</summary>
    public Histogram PublishAckLatency { get; }

    /// <summary>Record timestamp in the log (set at produce) → the node's feed hands it to its subscribers.</summary>
    public Histogram DeliveryLatency { get; }

    public long MessagesIn => Volatile.Read(ref _counts.MessagesIn);
    public long MessagesOut => Volatile.Read(ref _counts.MessagesOut);
    public long SlowConsumerCloses => Volatile.Read(ref _counts.SlowConsumerCloses);

    /// <summary>A publish acknowledged by the log.</summary>
    public void MessageIn() => Interlocked.Increment(ref _counts.MessagesIn);

    /// <summary>Live message frames handed to local subscribers.</summary>
    public void MessagesDelivered(int count)
    {
        if (count > 0) Interlocked.Add(ref _counts.MessagesOut, count);
    }

    public void ConnectionAccepted() => Interlocked.Increment(ref _counts.ConnectionsAccepted);

    public void SlowConsumerClosed() => Interlocked.Increment(ref _counts.SlowConsumerCloses);

    /// <summary>A request or frame refused as bad input, by protocol error code (or close reason).</summary>
    public void BadInput(string code)
    {
        var box = _counts.BadInput.GetOrAdd(code, static _ => new StrongBox<long>());
        Interlocked.Increment(ref box.Value);
    }

    /// <summary>A latency histogram in seconds with the buckets of <see cref="LatencyBuckets"/>.</summary>
    public sealed class Histogram
    {
        private readonly Histogram<double> _histogram;

        internal Histogram(Meter meter, string name, string description) =>
            _histogram = meter.CreateHistogram(name, "s", description, tags: null,
                advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

        /// <summary>Observes the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/>).</summary>
        public void ObserveSince(long startTimestamp) => Observe(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);

        public void Observe(double seconds)
        {
            if (seconds < 0 || double.IsNaN(seconds)) seconds = 0;
            _histogram.Record(seconds);
        }
    }
}
