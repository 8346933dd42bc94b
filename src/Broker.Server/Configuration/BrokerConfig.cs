using Broker.Core.Log;
using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using Akka.Configuration;
using Akka.Configuration.Hocon;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>
/// Loads the broker's HOCON: <c>hocon/broker.conf</c> (defaults, next to the binary), then the file
/// named by <c>BROKER_CONFIG</c>, then environment variables, then explicit overrides (tests, CLI).
/// Akka's HOCON parser does not substitute environment variables, so they are applied here.
/// </summary>
public static class BrokerConfig
{
    /// <summary>Environment variables an operator changes most, and the HOCON key each one sets.</summary>
    public static readonly IReadOnlyDictionary<string, string> EnvironmentKeys = new Dictionary<string, string>
    {
        ["BROKER_HTTP_HOST"] = "broker.http.host",
        ["BROKER_HTTP_PORT"] = "broker.http.port",
        ["BROKER_DASHBOARD"] = "broker.http.dashboard",
        ["BROKER_ADMIN_HOST"] = "broker.admin.host",
        ["BROKER_ADMIN_PORT"] = "broker.admin.port",
        ["BROKER_ADMIN_TOKEN"] = "broker.admin.token",
        ["BROKER_ADMIN_TOKEN_FILE"] = "broker.admin.token-file",
        ["BROKER_LOG_FORMAT"] = "broker.logging.format",
        ["BROKER_OTLP_ENDPOINT"] = "broker.metrics.otlp-endpoint",
        ["BROKER_KAFKA_BOOTSTRAP"] = "broker.kafka.bootstrap-servers",
        ["BROKER_KAFKA_EMBEDDED"] = "broker.kafka.embedded.enabled",
        ["BROKER_EMBEDDED_KAFKA_PORT"] = "broker.kafka.embedded.port",
        ["BROKER_KAFKA_TOPIC_PREFIX"] = "broker.kafka.topic-prefix",
        ["BROKER_CLUSTER_HOST"] = "broker.cluster.hostname",
        ["BROKER_CLUSTER_PORT"] = "broker.cluster.port",
        ["BROKER_SBR_STRATEGY"] = "broker.cluster.split-brain-resolver.active-strategy",
        ["BROKER_TOPIC_CREATION"] = "broker.kafka.topic-creation",
        ["BROKER_DEVKAFKA_ADMIN"] = "broker.kafka.devkafka-admin",
        ["BROKER_MAX_FRAME_BYTES"] = "broker.websocket.max-frame-bytes",
        ["BROKER_OUTBOUND_BUFFER"] = "broker.websocket.outbound-buffer-frames",
        ["BROKER_WS_COMPRESSION"] = "broker.websocket.compression",
        ["BROKER_DB_PROVIDER"] = "broker.persistence.provider",
        ["BROKER_DB_CONNECTION"] = "broker.persistence.connection-string",
        ["BROKER_DB_PATH"] = "broker.persistence.sqlite.path",
        ["BROKER_DB_PASSWORD_FILE"] = "broker.persistence.password-file",
        ["BROKER_INTERNAL_ENDPOINTS"] = "broker.http.internal-endpoints",
        ["BROKER_TLS_CERT_FILE"] = "broker.http.tls.cert-file",
        ["BROKER_TLS_KEY_FILE"] = "broker.http.tls.key-file",
        ["BROKER_TLS_PFX_FILE"] = "broker.http.tls.pfx-file",
        ["BROKER_TLS_PFX_PASSWORD_FILE"] = "broker.http.tls.pfx-password-file",
        ["BROKER_AUTH_MODE"] = "broker.auth.mode",
        ["BROKER_AUTH_ALLOW_ANONYMOUS_PUBLIC"] = "broker.auth.allow-anonymous-public",
        ["BROKER_AUTH_HS256_SECRET"] = "broker.auth.hs256-secret",
        ["BROKER_AUTH_HS256_SECRET_FILE"] = "broker.auth.hs256-secret-file",
        ["BROKER_AUTH_PUBLIC_KEYS_FILE"] = "broker.auth.public-keys-file",
        ["BROKER_AUTH_JWKS_FILE"] = "broker.auth.jwks-file",
        ["BROKER_AUTH_JWKS_URL"] = "broker.auth.jwks-url",
        ["BROKER_AUTH_ISSUER"] = "broker.auth.issuer",
        ["BROKER_AUTH_AUDIENCE"] = "broker.auth.audience",
    };

    public static Config Load(IReadOnlyDictionary<string, string>? overrides = null, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var path = Path.Combine(AppContext.BaseDirectory, "hocon", "broker.conf");
        var config = ConfigurationFactory.ParseString(File.ReadAllText(path));
        if (environment("BROKER_CONFIG") is { Length: > 0 } extra)
            config = ConfigurationFactory.ParseString(File.ReadAllText(extra)).WithFallback(config);
        var values = new Dictionary<string, string>();
        foreach (var (variable, key) in EnvironmentKeys)
        {
            if (environment(variable) is { Length: > 0 } v) values[key] = v;
        }
        if (overrides is not null) foreach (var (k, v) in overrides) values[k] = v;
        if (values.Count > 0) config = ConfigurationFactory.ParseString(ToHocon(values)).WithFallback(config);
        // BROKER_SEEDS is a list: "akka.tcp://broker@a:4053,akka.tcp://broker@b:4053".
        if (environment("BROKER_SEEDS") is { Length: > 0 } seeds && overrides?.ContainsKey("broker.cluster.seed-nodes") != true)
        {
            var list = string.Join(", ", seeds.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Quote));
            config = ConfigurationFactory.ParseString($"broker.cluster.seed-nodes = [{list}]").WithFallback(config);
        }
        return config;
    }

    private static string ToHocon(Dictionary<string, string> values) =>
        string.Join('\n', values.Select(kv => $"{kv.Key} = {Quote(kv.Value)}"));

    private static string Quote(string v) => "\"" + v.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    public static ConnectionSettings Connection(Config c) => new()
    {
        MaxFrameBytes = Bytes(c, "broker.websocket.max-frame-bytes"),
        MaxDataBytes = Bytes(c, "broker.websocket.max-data-bytes"),
        MaxLast = c.GetInt("broker.websocket.max-last"),
        OutboundBufferFrames = c.GetInt("broker.websocket.outbound-buffer-frames"),
        OutboundBufferBytes = c.GetByteSize("broker.websocket.outbound-buffer-bytes") ?? long.MaxValue,
        MaxInflightRequests = c.GetInt("broker.websocket.max-inflight-requests"),
        MaxSubscriptions = c.GetInt("broker.websocket.max-subscriptions"),
        KeepAliveInterval = c.GetTimeSpan("broker.websocket.keepalive-interval"),
        IdleTimeout = c.GetTimeSpan("broker.websocket.idle-timeout"),
        CloseTimeout = c.GetTimeSpan("broker.websocket.close-timeout"),
        RequestTimeout = c.GetTimeSpan("broker.websocket.request-timeout"),
        ReplayStallTimeout = c.GetTimeSpan("broker.websocket.replay-stall-timeout"),
        BatchMaxBytes = Bytes(c, "broker.websocket.batch-max-bytes"),
        MaxReplaysPerConnection = c.GetInt("broker.websocket.max-replays-per-connection"),
        Compression = c.GetBoolean("broker.websocket.compression"),
    };

    public static KafkaSettings Kafka(Config c, string bootstrapServers) => new()
    {
        BootstrapServers = bootstrapServers,
        TopicPrefix = c.GetString("broker.kafka.topic-prefix", ""),
        DeniedTopics = [.. c.GetStringList("broker.kafka.denied-topics") ?? []],
        ClientConfig = KafkaClientProperties.FromConfig(c),
        Partitions = c.GetInt("broker.kafka.partitions"),
        ReplicationFactor = (short)c.GetInt("broker.kafka.replication-factor"),
        ProduceLinger = c.GetTimeSpan("broker.kafka.produce-linger"),
        ProduceTimeout = c.GetTimeSpan("broker.kafka.produce-timeout"),
        FeedLinger = c.GetTimeSpan("broker.kafka.feed-linger"),
        QueryTimeout = c.GetTimeSpan("broker.kafka.query-timeout"),
        FetchWaitMax = c.GetTimeSpan("broker.kafka.fetch-wait-max"),
        MaxConcurrentReplays = c.GetInt("broker.kafka.max-concurrent-replays"),
        PartitionRefresh = c.GetTimeSpan("broker.kafka.partition-refresh", TimeSpan.FromSeconds(30)),
        ReconnectBackoffMax = c.GetTimeSpan("broker.kafka.reconnect-backoff-max", TimeSpan.FromSeconds(1)),
        Namespaces = Namespaces(c),
        Unmapped = c.GetString("broker.namespaces-default", "allow").Trim().ToLowerInvariant() switch
        {
            "allow" => UnmappedTopics.Allow,
            "not_found" or "not-found" => UnmappedTopics.NotFound,
            "forbidden" => UnmappedTopics.Forbidden,
            var other => throw new ConfigurationException($"broker.namespaces-default: '{other}' is not allow, not_found or forbidden"),
        },
    };

    /// <summary>
    /// <c>broker.namespaces</c>: a list of objects {pattern, kafka-topic (template with {topic}) or
    /// kafka-prefix, partitions, replication-factor, create, read-only, retention}, first match wins.
    /// </summary>
    public static IReadOnlyList<NamespaceRule> Namespaces(Config c)
    {
        var value = c.GetValue("broker.namespaces");
        if (value is null || value.IsEmpty) return [];
        var prefix = c.GetString("broker.kafka.topic-prefix", "");
        var rules = new List<NamespaceRule>();
        foreach (var item in value.GetArray())
        {
            var n = new Config(new HoconRoot(item));
            var pattern = n.GetString("pattern", "");
            if (string.IsNullOrWhiteSpace(pattern)) throw new ConfigurationException("broker.namespaces: every namespace needs a pattern");
            var kafkaPrefix = n.GetString("kafka-prefix", null);
            var template = n.GetString("kafka-topic", null) ?? (kafkaPrefix ?? prefix) + "{topic}";
            var partitions = n.GetInt("partitions", c.GetInt("broker.kafka.partitions"));
            if (partitions < 1) throw new ConfigurationException($"broker.namespaces '{pattern}': partitions = {partitions}; at least 1");
            var retention = n.HasPath("retention") ? n.GetTimeSpan("retention") : (TimeSpan?)null;
            var multiplex = n.GetBoolean("multiplex", false);
            if (multiplex && (template.Contains("{topic}", StringComparison.Ordinal) || n.GetString("kafka-topic", null) is null))
                throw new ConfigurationException($"broker.namespaces '{pattern}': multiplex = true needs a fixed kafka-topic (the one Kafka topic every topic of the namespace shares), e.g. kafka-topic = \"broker.users\"");
            rules.Add(new NamespaceRule(pattern, template, partitions,
                (short)n.GetInt("replication-factor", c.GetInt("broker.kafka.replication-factor")),
                n.GetBoolean("create", true), n.GetBoolean("read-only", false), retention, multiplex));
        }
        return rules;
    }

    public static Broker.Core.Fanout.RecentHistorySettings RecentHistory(Config c) => new(
        c.GetInt("broker.fanout.recent-history.messages"),
        c.GetByteSize("broker.fanout.recent-history.max-bytes") ?? throw new ConfigurationException("broker.fanout.recent-history.max-bytes is required"),
        c.GetTimeSpan("broker.fanout.recent-history.idle-expiry"));

    public static Broker.Core.Publish.TopicSettings Topics(Config c) => new()
    {
        DedupWindow = c.GetInt("broker.topics.dedup-window"),
    };

    public static Broker.Core.Sessions.SessionSettings Sessions(Config c) => new()
    {
        ExpireAfter = c.GetTimeSpan("broker.sessions.expire-after"),
        SnapshotEvery = c.GetInt("broker.sessions.snapshot-every"),
        RequestTimeout = c.GetTimeSpan("broker.sessions.request-timeout"),
    };

    /// <summary>The persistence provider: <c>sqlite</c> or <c>postgresql</c>.</summary>
    public static string PersistenceProvider(Config c) => c.GetString("broker.persistence.provider", "sqlite").Trim().ToLowerInvariant() switch
    {
        "sqlite" => "sqlite",
        "postgresql" or "postgres" => "postgresql",
        var other => throw new ConfigurationException($"broker.persistence.provider: unknown provider '{other}' (sqlite or postgresql)"),
    };

    /// <summary>
    /// The Akka.Persistence.Sql configuration of the provider: <c>hocon/persistence-&lt;provider&gt;.conf</c>
    /// with the connection string set (for SQLite built from <c>broker.persistence.sqlite.path</c>
    /// when no connection string is given).
    /// </summary>
    public static Config Persistence(Config c, string connectionString)
    {
        var provider = PersistenceProvider(c);
        var file = Path.Combine(AppContext.BaseDirectory, "hocon", $"persistence-{provider}.conf");
        var plugin = ConfigurationFactory.ParseString(File.ReadAllText(file));
        var conn = Quote(connectionString);
        return ConfigurationFactory.ParseString($"""
            akka.persistence.journal.sql.connection-string = {conn}
            akka.persistence.snapshot-store.sql.connection-string = {conn}
            """).WithFallback(plugin);
    }

    /// <summary>Seed nodes: a list in HOCON, or a comma-separated string (an override or BROKER_SEEDS).</summary>
    public static string[] SeedNodes(Config c)
    {
        var value = c.GetValue("broker.cluster.seed-nodes");
        if (value is null || value.IsEmpty) return [];
        if (value.IsString()) return value.GetString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return [.. c.GetStringList("broker.cluster.seed-nodes")];
    }

    /// <summary>Whether this node runs the embedded Kafka-protocol log.</summary>
    public static bool EmbeddedKafka(Config c) => c.GetString("broker.kafka.embedded.enabled", "auto").ToLowerInvariant() switch
    {
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        _ => string.IsNullOrWhiteSpace(c.GetString("broker.kafka.bootstrap-servers", "")),
    };

    private static int Bytes(Config c, string key)
    {
        var v = c.GetByteSize(key) ?? throw new ConfigurationException($"{key} is required");
        return checked((int)v);
    }
}
