using Broker.Protocol;

namespace Broker.Core.Settings;

/// <summary>Limits and timers of one WebSocket connection (HOCON <c>broker.websocket</c>).</summary>
public sealed record ConnectionSettings
{
    /// <summary>Largest inbound frame (a whole message, after reassembly); larger ones close with 1009.</summary>
    public int MaxFrameBytes { get; init; } = 64 * 1024;
    /// <summary>Largest <c>data</c> value of a publish; larger ones get <c>too_large</c>.</summary>
    public int MaxDataBytes { get; init; } = 60 * 1024;
    /// <summary>Largest N in <c>subscribe.last</c>.</summary>
    public int MaxLast { get; init; } = 10_000;
    /// <summary>Frames queued for a connection before it is closed with 1013 slow_consumer.</summary>
    public int OutboundBufferFrames { get; init; } = 4096;
    /// <summary>Bytes queued for a connection before a live message closes it with 1013 slow_consumer.</summary>
    public long OutboundBufferBytes { get; init; } = 8 * 1024 * 1024;
    /// <summary>Requests of one connection handled at once (publishes awaiting their ack).</summary>
    public int MaxInflightRequests { get; init; } = 64;
    /// <summary>Most topics one connection may subscribe to.</summary>
    public int MaxSubscriptions { get; init; } = 1000;
    /// <summary>Interval of server WebSocket pings.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>A peer that does not answer a ping within this time is dropped.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(45);
    /// <summary>How long a close handshake (or a send to a stuck peer) may take before the socket is aborted.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>How long a request (publish ack, subscribe set-up) may take before the client gets <c>unavailable</c>.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A replay whose client has not made room for the next history frame within this time is closed as a slow consumer.</summary>
    public TimeSpan ReplayStallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Catch-up reads (replays) of one connection that run at once; its others wait for them.</summary>
    public int MaxReplaysPerConnection { get; init; } = 2;

    /// <summary>Largest JSON array of server objects sent as one frame to a client that asked for batching (<c>?batch=1</c>).</summary>
    public int BatchMaxBytes { get; init; } = 64 * 1024;

    /// <summary>Whether permessage-deflate is negotiated with clients that offer it.</summary>
    public bool Compression { get; init; }

    public ProtocolLimits Limits => new(MaxDataBytes, MaxLast);
}

/// <summary>Kafka connection and topic mapping (HOCON <c>broker.kafka</c>).</summary>
public sealed record KafkaSettings
{
    public string BootstrapServers { get; init; } = "127.0.0.1:9092";
    /// <summary>Kafka topic name = prefix + broker topic name.</summary>
    public string TopicPrefix { get; init; } = "";
    /// <summary>Kafka topics clients may never reach (exact, <c>prefix*</c> or <c>*suffix</c>), on top of names beginning with '_' (<c>broker.kafka.denied-topics</c>).</summary>
    public IReadOnlyList<string> DeniedTopics { get; init; } = [];
    /// <summary>librdkafka properties set on every Kafka client of the node, e.g. SASL/SSL (<c>broker.kafka.client-config</c>, <c>client-config-files</c>).</summary>
    public IReadOnlyDictionary<string, string> ClientConfig { get; init; } = new Dictionary<string, string>();
    /// <summary>Partitions of topics the broker creates.</summary>
    public int Partitions { get; init; } = 1;
    public short ReplicationFactor { get; init; } = 1;
    /// <summary>Producer linger: small batches amortise Kafka round trips under load.</summary>
    public TimeSpan ProduceLinger { get; init; } = TimeSpan.FromMilliseconds(2);
    /// <summary>A publish that Kafka has not acknowledged within this time is answered <c>unavailable</c>.</summary>
    public TimeSpan ProduceTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Node-local feeds keep reading this long after their last local subscriber left.</summary>
    public TimeSpan FeedLinger { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Longest a fetch waits for new records (lower: less delivery latency, more idle fetches).</summary>
    public TimeSpan FetchWaitMax { get; init; } = TimeSpan.FromMilliseconds(10);
    /// <summary>Timeout of metadata and watermark queries.</summary>
    public TimeSpan QueryTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Longest wait between reconnection attempts to an unreachable Kafka broker (librdkafka <c>reconnect.backoff.max.ms</c>).</summary>
    public TimeSpan ReconnectBackoffMax { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>How often a node asks how many partitions the topics it reads have (partitions added to a Kafka topic are read from then on).</summary>
    public TimeSpan PartitionRefresh { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Catch-up (replay) reads that may run at once on a node.</summary>
    public int MaxConcurrentReplays { get; init; } = 16;

    /// <summary>Namespaces (HOCON <c>broker.namespaces</c>): the first rule whose pattern matches a topic maps it.</summary>
    public IReadOnlyList<NamespaceRule> Namespaces { get; init; } = [];
    /// <summary>What happens to topics no namespace matches.</summary>
    public UnmappedTopics Unmapped { get; init; } = UnmappedTopics.Allow;

    /// <summary>The topic's Kafka mapping: the first matching namespace, else the default mapping (null when unmapped topics are refused).</summary>
    public TopicMapping? Resolve(string topic)
    {
        foreach (var rule in Namespaces)
            if (rule.Matches(topic)) return rule.Map(topic);
        return Unmapped == UnmappedTopics.Allow
            ? new TopicMapping(TopicPrefix.Length == 0 ? topic : TopicPrefix + topic, Partitions, ReplicationFactor, Create: true, ReadOnly: false, Retention: null)
            : null;
    }

    /// <summary>The Kafka topic of a broker topic (the default mapping when it is refused; callers check <see cref="Resolve"/> first).</summary>
    public string KafkaTopicFor(string topic) => Resolve(topic)?.KafkaTopic ?? (TopicPrefix.Length == 0 ? topic : TopicPrefix + topic);
}
