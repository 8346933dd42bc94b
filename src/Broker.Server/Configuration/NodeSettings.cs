using Akka.Configuration;
using Broker.Core.Fanout;
using Broker.Core.Publish;
using Broker.Core.Security;
using Broker.Core.Sessions;
using Broker.Core.Settings;
using Broker.Server.Metrics;
using Broker.Server.Publish;

namespace Broker.Server.Configuration;

/// <summary>
/// Every setting of a node, read and validated once at startup (<see cref="Bind(Config)"/>) from the
/// merged HOCON whose defaults are hocon/broker.conf. The rest of the code receives these records,
/// never HOCON keys. Each section binds itself beside its own definition.
/// </summary>
public sealed record NodeSettings
{
    /// <summary><c>broker.http</c>: the public listener.</summary>
    public required HttpSettings Http { get; init; }

    /// <summary><c>broker.admin</c>: the admin API.</summary>
    public required AdminSettings Admin { get; init; }

    /// <summary><c>broker.websocket</c>: limits and timers of a connection.</summary>
    public required ConnectionSettings WebSocket { get; init; }

    /// <summary><c>broker.auth</c>, <c>broker.limits</c>, <c>broker.websocket.allowed-origins</c> and the namespaces' access levels.</summary>
    public required SecuritySettings Security { get; init; }

    /// <summary><c>broker.http-publish</c>: <c>POST /v1/publish</c>.</summary>
    public required HttpPublishSettings HttpPublish { get; init; }

    /// <summary><c>broker.kafka</c> and the namespaces: the log and the topic mapping.</summary>
    public required KafkaSettings Kafka { get; init; }

    /// <summary><c>broker.kafka.embedded</c>: the in-memory log.</summary>
    public required EmbeddedLogSettings EmbeddedLog { get; init; }

    /// <summary>How Kafka topics are created.</summary>
    public required TopicCreationSettings TopicCreation { get; init; }

    /// <summary><c>broker.fanout.recent-history</c>: what a node keeps of multiplexed topics.</summary>
    public required RecentHistorySettings RecentHistory { get; init; }

    /// <summary><c>broker.fanout.offset-index</c>: where multiplexed topics' last records are.</summary>
    public required OffsetIndexSettings OffsetIndex { get; init; }

    /// <summary><c>broker.cluster</c>: remoting, seeds, split-brain resolver, sharding.</summary>
    public required BrokerClusterSettings Cluster { get; init; }

    /// <summary><c>broker.topics</c>: topic actors.</summary>
    public required TopicSettings Topics { get; init; }

    /// <summary><c>broker.persistence</c>: the session store.</summary>
    public required PersistenceSettings Persistence { get; init; }

    /// <summary><c>broker.sessions</c>: durable sessions.</summary>
    public required SessionSettings Sessions { get; init; }

    /// <summary><c>broker.metrics</c>: /metrics and OTLP.</summary>
    public required MetricsSettings Metrics { get; init; }

    /// <summary><c>broker.logging</c>: the node's log.</summary>
    public required LoggingSettings Logging { get; init; }

    /// <summary><c>broker.health</c>: readiness checks.</summary>
    public required HealthSettings Health { get; init; }

    /// <summary>SIGTERM handling.</summary>
    public required ShutdownSettings Shutdown { get; init; }

    /// <summary>The <c>akka</c> section, handed to the actor system as it is.</summary>
    public required Config Akka { get; init; }

    /// <summary>Binds every section of <paramref name="config"/>; throws <see cref="SettingsException"/> at the first bad value.</summary>
    public static NodeSettings Bind(Config config) => Bind(new SettingsReader(config));

    /// <summary>Binds every section through <paramref name="r"/> (whose <see cref="SettingsReader.KeysRead"/> then lists every key used).</summary>
    public static NodeSettings Bind(SettingsReader r)
    {
        var http = HttpSettings.Bind(r);
        var admin = AdminSettings.Bind(r);
        // The same port number on two different addresses is fine (requests are told apart by listener).
        if (http.Port != 0 && admin.Port == http.Port && Overlap(http.Address, admin.Address))
            throw r.Invalid("broker.admin.port", admin.Port.ToString(),
                "a port other than broker.http.port on the same address (the admin API has a listener of its own; another broker.admin.host may share the number)");
        var websocket = ConnectionSettings.Bind(r);
        var kafka = KafkaSettings.Bind(r);
        var embedded = EmbeddedLogSettings.Bind(r, kafka.BootstrapServers);
        return new NodeSettings
        {
            Http = http,
            Admin = admin,
            WebSocket = websocket,
            Security = SecuritySettings.Bind(r, websocket, kafka.Namespaces),
            HttpPublish = HttpPublishSettings.Bind(r),
            Kafka = kafka,
            EmbeddedLog = embedded,
            TopicCreation = TopicCreationSettings.Bind(r, embedded.Enabled),
            RecentHistory = RecentHistorySettings.Bind(r),
            OffsetIndex = OffsetIndexSettings.Bind(r),
            Cluster = BrokerClusterSettings.Bind(r),
            Topics = TopicSettings.Bind(r),
            Persistence = PersistenceSettings.Bind(r),
            Sessions = SessionSettings.Bind(r),
            Metrics = MetricsSettings.Bind(r),
            Logging = LoggingSettings.Bind(r),
            Health = HealthSettings.Bind(r),
            Shutdown = ShutdownSettings.Bind(r),
            Akka = r.Section("akka"),
        };
    }

    /// <summary>Whether two listen addresses can take the same port (the same address, or either is every interface).</summary>
    private static bool Overlap(System.Net.IPAddress a, System.Net.IPAddress b) =>
        a.Equals(b) || a.Equals(System.Net.IPAddress.Any) || b.Equals(System.Net.IPAddress.Any)
        || a.Equals(System.Net.IPAddress.IPv6Any) || b.Equals(System.Net.IPAddress.IPv6Any);
}
