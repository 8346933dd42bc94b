using Broker.Protocol;

namespace Broker.Core.Settings;

/// <summary>Limits and timers of one WebSocket connection (HOCON <c>broker.websocket</c>).</summary>
public sealed record ConnectionSettings
{
    /// <summary>Largest inbound frame (a whole message, after reassembly); larger ones close with 1009.</summary>
    public required int MaxFrameBytes { get; init; }
    /// <summary>Largest <c>data</c> value of a publish; larger ones get <c>too_large</c>.</summary>
    public required int MaxDataBytes { get; init; }
    /// <summary>Largest N in <c>subscribe.last</c>.</summary>
    public required int MaxLast { get; init; }
    /// <summary>Frames queued for a connection before it is closed with 1013 slow_consumer.</summary>
    public required int OutboundBufferFrames { get; init; }
    /// <summary>Bytes queued for a connection before a live message closes it with 1013 slow_consumer.</summary>
    public required long OutboundBufferBytes { get; init; }
    /// <summary>Requests of one connection handled at once (publishes awaiting their ack).</summary>
    public required int MaxInflightRequests { get; init; }
    /// <summary>Most topics one connection may subscribe to.</summary>
    public required int MaxSubscriptions { get; init; }
    /// <summary>Interval of server WebSocket pings.</summary>
    public required TimeSpan KeepAliveInterval { get; init; }
    /// <summary>A peer that does not answer a ping within this time is dropped.</summary>
    public required TimeSpan IdleTimeout { get; init; }
    /// <summary>How long a close handshake (or a send to a stuck peer) may take before the socket is aborted.</summary>
    public required TimeSpan CloseTimeout { get; init; }
    /// <summary>How long a request (publish ack, subscribe set-up) may take before the client gets <c>unavailable</c>.</summary>
    public required TimeSpan RequestTimeout { get; init; }

    /// <summary>A replay whose client has not made room for the next history frame within this time is closed as a slow consumer.</summary>
    public required TimeSpan ReplayStallTimeout { get; init; }

    /// <summary>Largest <c>key</c> of a publish or subscribe, in UTF-8 bytes.</summary>
    public required int MaxKeyBytes { get; init; }

    /// <summary>Catch-up reads (replays) of one connection that run at once; its others wait for them.</summary>
    public required int MaxReplaysPerConnection { get; init; }

    /// <summary>Largest JSON array of server objects sent as one frame to a client that asked for batching (<c>?batch=1</c>).</summary>
    public required int BatchMaxBytes { get; init; }

    /// <summary>Whether permessage-deflate is negotiated with clients that offer it.</summary>
    public required bool Compression { get; init; }

    public ProtocolLimits Limits => new(MaxDataBytes, MaxLast, MaxKeyBytes);

    /// <summary>Binds and validates <c>broker.websocket</c>.</summary>
    public static ConnectionSettings Bind(SettingsReader r) => new()
    {
        MaxFrameBytes = (int)r.Bytes("broker.websocket.max-frame-bytes", 1024, int.MaxValue),
        MaxDataBytes = (int)r.Bytes("broker.websocket.max-data-bytes", 1, int.MaxValue),
        MaxLast = r.Int("broker.websocket.max-last", 0),
        OutboundBufferFrames = r.Int("broker.websocket.outbound-buffer-frames", 1),
        OutboundBufferBytes = r.Bytes("broker.websocket.outbound-buffer-bytes", 1),
        MaxInflightRequests = r.Int("broker.websocket.max-inflight-requests", 1),
        MaxSubscriptions = r.Int("broker.websocket.max-subscriptions", 1),
        KeepAliveInterval = r.Duration("broker.websocket.keepalive-interval"),
        IdleTimeout = r.Duration("broker.websocket.idle-timeout"),
        CloseTimeout = r.Duration("broker.websocket.close-timeout"),
        RequestTimeout = r.Duration("broker.websocket.request-timeout"),
        ReplayStallTimeout = r.Duration("broker.websocket.replay-stall-timeout"),
        MaxKeyBytes = (int)r.Bytes("broker.websocket.max-key-bytes", 1, int.MaxValue),
        MaxReplaysPerConnection = r.Int("broker.websocket.max-replays-per-connection", 1),
        // A frame holds at least one whole server object: a batch smaller than a frame would never fill.
        BatchMaxBytes = (int)r.Bytes("broker.websocket.batch-max-bytes", 1024, int.MaxValue),
        Compression = r.Switch("broker.websocket.compression"),
    };
}

/// <summary>Kafka connection and topic mapping (HOCON <c>broker.kafka</c>).</summary>
public sealed record KafkaSettings
{
    /// <summary>Kafka bootstrap servers (<c>host:port,…</c>); configured empty when the embedded log serves, which the host then fills in.</summary>
    public required string BootstrapServers { get; init; }
    /// <summary>Kafka topic name = prefix + broker topic name.</summary>
    public required string TopicPrefix { get; init; }
    /// <summary>Kafka topics clients may never reach (exact, <c>prefix*</c> or <c>*suffix</c>), on top of names beginning with '_' (<c>broker.kafka.denied-topics</c>).</summary>
    public required IReadOnlyList<string> DeniedTopics { get; init; }
    /// <summary>librdkafka properties set on every Kafka client of the node, e.g. SASL/SSL (<c>broker.kafka.client-config</c>, <c>client-config-files</c>).</summary>
    public required IReadOnlyDictionary<string, string> ClientConfig { get; init; }
    /// <summary>Partitions of topics the broker creates.</summary>
    public required int Partitions { get; init; }
    /// <summary>Replication factor of topics the broker creates through the AdminClient.</summary>
    public required short ReplicationFactor { get; init; }
    /// <summary>Producer linger: small batches amortise Kafka round trips under load.</summary>
    public required TimeSpan ProduceLinger { get; init; }
    /// <summary>
    /// librdkafka's message.timeout.ms: Kafka's answer to every record comes within this time (an ack,
    /// or an error that says whether the record may have been written).
    /// </summary>
    public required TimeSpan ProduceTimeout { get; init; }
    /// <summary>Records the node's producer queue holds at most (queue.buffering.max.messages); a publish that finds it full is refused.</summary>
    public required int ProducerQueueMessages { get; init; }
    /// <summary>Bytes the node's producer queue holds at most (queue.buffering.max.kbytes); a publish that finds it full is refused.</summary>
    public required long ProducerQueueBytes { get; init; }
    /// <summary>Node-local feeds keep reading this long after their last local subscriber left.</summary>
    public required TimeSpan FeedLinger { get; init; }
    /// <summary>Longest a fetch waits for new records (lower: less delivery latency, more idle fetches).</summary>
    public required TimeSpan FetchWaitMax { get; init; }
    /// <summary>Timeout of metadata and watermark queries.</summary>
    public required TimeSpan QueryTimeout { get; init; }
    /// <summary>Longest wait between reconnection attempts to an unreachable Kafka broker (librdkafka <c>reconnect.backoff.max.ms</c>).</summary>
    public required TimeSpan ReconnectBackoffMax { get; init; }
    /// <summary>How often a node asks how many partitions the topics it reads have (partitions added to a Kafka topic are read from then on).</summary>
    public required TimeSpan PartitionRefresh { get; init; }
    /// <summary>Catch-up (replay) reads that may run at once on a node.</summary>
    public required int MaxConcurrentReplays { get; init; }
    /// <summary>A catch-up read whose client has not taken a record within this time gives its slot and consumer back while it waits.</summary>
    public required TimeSpan ReplayYieldAfter { get; init; }

    /// <summary>Namespaces (HOCON <c>broker.namespaces</c>): the first rule whose pattern matches a topic maps it.</summary>
    public required IReadOnlyList<NamespaceRule> Namespaces { get; init; }
    /// <summary>What happens to topics no namespace matches.</summary>
    public required UnmappedTopics Unmapped { get; init; }

    /// <summary>On shutdown, how long unacknowledged records may take to be flushed and the Kafka reader threads to stop.</summary>
    public required TimeSpan CloseTimeout { get; init; }
    /// <summary>Longest one poll of the node feed blocks before it takes new subscribers (join latency of an idle topic).</summary>
    public required TimeSpan FeedPoll { get; init; }
    /// <summary>How often the node feed drops feeds whose <see cref="FeedLinger"/> has run out (and shared feeds forget idle topics).</summary>
    public required TimeSpan FeedLingerCheck { get; init; }
    /// <summary>A replay that receives nothing for this long checks whether the rest of its range holds no records (gaps, retention).</summary>
    public required TimeSpan ReplayPoll { get; init; }
    /// <summary>Pause between metadata queries while a topic just created reaches every Kafka broker's metadata.</summary>
    public required TimeSpan MetadataRetry { get; init; }
    /// <summary>Dedicated threads of a node for blocking Kafka queries (watermarks, metadata).</summary>
    public required int QueryThreads { get; init; }
    /// <summary>How long the node reuses the cluster's topic list before a topic it does not know may be created (at most one metadata query per period).</summary>
    public required TimeSpan TopicListMaxAge { get; init; }

    /// <summary>Binds and validates <c>broker.kafka</c> with <c>broker.namespaces</c> and <c>broker.namespaces-default</c>.</summary>
    public static KafkaSettings Bind(SettingsReader r)
    {
        var prefix = r.String("broker.kafka.topic-prefix").Trim();
        var partitions = r.Int("broker.kafka.partitions", 1, Position.MaxPartitions);
        var replication = (short)r.Int("broker.kafka.replication-factor", 1, short.MaxValue);
        return new KafkaSettings
        {
            BootstrapServers = BootstrapList(r, "broker.kafka.bootstrap-servers"),
            TopicPrefix = prefix,
            DeniedTopics = r.StringList("broker.kafka.denied-topics"),
            ClientConfig = ClientProperties(r),
            Partitions = partitions,
            ReplicationFactor = replication,
            ProduceLinger = r.Duration("broker.kafka.produce-linger", TimeSpan.Zero),
            ProduceTimeout = r.Duration("broker.kafka.produce-timeout"),
            ProducerQueueMessages = r.Int("broker.kafka.producer-queue-messages", 1, 10_000_000),
            ProducerQueueBytes = r.Bytes("broker.kafka.producer-queue-bytes", 1024, 2_097_151L * 1024),
            FeedLinger = r.Duration("broker.kafka.feed-linger", TimeSpan.Zero),
            FetchWaitMax = r.Duration("broker.kafka.fetch-wait-max", TimeSpan.Zero),
            QueryTimeout = r.Duration("broker.kafka.query-timeout"),
            ReconnectBackoffMax = r.Duration("broker.kafka.reconnect-backoff-max"),
            PartitionRefresh = r.Duration("broker.kafka.partition-refresh"),
            MaxConcurrentReplays = r.Int("broker.kafka.max-concurrent-replays", 1),
            ReplayYieldAfter = r.Duration("broker.kafka.replay-yield-after"),
            Namespaces = NamespaceRule.BindAll(r, prefix, partitions, replication),
            Unmapped = r.Choice("broker.namespaces-default",
                [("allow", UnmappedTopics.Allow), ("not_found", UnmappedTopics.NotFound), ("not-found", UnmappedTopics.NotFound), ("forbidden", UnmappedTopics.Forbidden)],
                "allow, not_found or forbidden"),
            CloseTimeout = r.Duration("broker.kafka.close-timeout", TimeSpan.Zero),
            FeedPoll = r.Duration("broker.kafka.feed-poll"),
            FeedLingerCheck = r.Duration("broker.kafka.feed-linger-check"),
            ReplayPoll = r.Duration("broker.kafka.replay-poll"),
            MetadataRetry = r.Duration("broker.kafka.metadata-retry"),
            QueryThreads = r.Int("broker.kafka.query-threads", 1, 256),
            TopicListMaxAge = r.Duration("broker.kafka.topic-list-max-age", TimeSpan.Zero),
        };
    }

    /// <summary>
    /// <c>broker.kafka.client-config</c>: librdkafka properties passed through to every Kafka client of
    /// the node (quote dotted names: <c>"security.protocol" = SASL_SSL</c>; unquoted ones nest and are
    /// flattened back to dotted names), and <c>broker.kafka.client-config-files</c>: properties whose
    /// values are read from files (secrets: <c>"sasl.password" = "/run/secrets/kafka_password"</c>).
    /// </summary>
    private static Dictionary<string, string> ClientProperties(SettingsReader r)
    {
        const string filesKey = "broker.kafka.client-config-files";
        var properties = new Dictionary<string, string>(r.Properties("broker.kafka.client-config"), StringComparer.Ordinal);
        foreach (var (name, path) in r.Properties(filesKey))
            properties[name] = r.ReadSecret($"{filesKey}.\"{name}\"", path, $"the value of the librdkafka property {name}");
        return properties;
    }

    /// <summary>Empty, or <c>host:port</c> items separated by commas.</summary>
    private static string BootstrapList(SettingsReader r, string key)
    {
        var value = r.String(key).Trim();
        if (value.Length == 0) return value;
        foreach (var server in value.Split(',', StringSplitOptions.TrimEntries))
        {
            var colon = server.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(server[(colon + 1)..], out var port) || port is < 1 or > 65535)
                throw r.Invalid(key, value, "host:port items separated by commas, such as kafka1:9092,kafka2:9092 (empty: the embedded log)");
        }
        return value;
    }

    /// <summary>The topic's Kafka mapping: the first matching namespace, else the default mapping (null when unmapped topics are refused).</summary>
    public TopicMapping? Resolve(string topic)
    {
        foreach (var rule in Namespaces)
            if (rule.Matches(topic)) return rule.Map(topic);
        return Unmapped == UnmappedTopics.Allow
            ? new TopicMapping(TopicPrefix.Length == 0 ? topic : TopicPrefix + topic, Partitions, ReplicationFactor, Create: true, ReadOnly: false, Retention: null)
            : null;
    }

    /// <summary>
    /// The partitions a Kafka topic is created with when a Kafka client (kcat, another service)
    /// names it before the broker does: those of the first namespace whose Kafka topic it is (the
    /// shared topic of a multiplexed namespace, or a name its <c>kafka-topic</c> template makes),
    /// else <see cref="Partitions"/>.
    /// </summary>
    public int PartitionsOfKafkaTopic(string kafkaTopic)
    {
        foreach (var rule in Namespaces)
        {
            var at = rule.KafkaTopic.IndexOf("{topic}", StringComparison.Ordinal);
            if (at < 0)
            {
                if (rule.KafkaTopic == kafkaTopic) return rule.Partitions;
                continue;
            }
            var prefix = rule.KafkaTopic[..at];
            var suffix = rule.KafkaTopic[(at + "{topic}".Length)..];
            if (kafkaTopic.Length > prefix.Length + suffix.Length && kafkaTopic.StartsWith(prefix, StringComparison.Ordinal)
                && kafkaTopic.EndsWith(suffix, StringComparison.Ordinal) && rule.Matches(kafkaTopic[prefix.Length..^suffix.Length]))
                return rule.Partitions;
        }
        return Partitions;
    }

    /// <summary>The Kafka topic of a broker topic (the default mapping when it is refused; callers check <see cref="Resolve"/> first).</summary>
    public string KafkaTopicFor(string topic) => Resolve(topic)?.KafkaTopic ?? (TopicPrefix.Length == 0 ? topic : TopicPrefix + topic);
}
