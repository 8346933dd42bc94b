using Akka.Actor;
using Akka.Event;
using Broker.Core.Settings;
using Broker.Server.Admin;
using Broker.Server.Configuration;

namespace Broker.Server.Hosting;

/// <summary>
/// The few lines a node writes when it starts: where its configuration came from, unknown keys,
/// the log it uses, where durable sessions are stored, and a final <c>ready:</c> line with the URLs
/// once the node is Up in the cluster. Together with Akka's membership lines they fit on one screen.
/// </summary>
public static class StartupLog
{
    /// <summary>The configuration files and environment variables read over the built-in defaults, and unknown keys.</summary>
    public static void Configuration(ILogger log, LoadedConfig config, IReadOnlyList<string> unknownKeys)
    {
        var sources = new List<string> { "hocon/broker.conf (built in)" };
        sources.AddRange(config.Files);
        if (config.EnvironmentVariables.Count > 0)
            sources.Add("env " + string.Join(", ", config.EnvironmentVariables.Keys.Order(StringComparer.Ordinal)));
        log.LogInformation("configuration: {Sources}", string.Join(" < ", sources));
        foreach (var warning in unknownKeys) log.LogWarning("{Warning}", warning);
    }

    /// <summary>The Kafka-protocol log the node uses.</summary>
    public static void Log(ILogger log, KafkaSettings kafka, bool embedded)
    {
        if (!embedded)
        {
            log.LogInformation("Kafka: bootstrap servers {Bootstrap}", kafka.BootstrapServers);
            return;
        }
        log.LogInformation("Kafka-protocol log (embedded) on {Bootstrap}: use it as bootstrap.servers, e.g. kcat -b {Bootstrap} -P -t <topic>", kafka.BootstrapServers, kafka.BootstrapServers);
        log.LogWarning("The embedded log keeps messages IN MEMORY ONLY: they are lost when this process stops. Set BROKER_KAFKA_BOOTSTRAP (broker.kafka.bootstrap-servers) to a Kafka cluster for anything else");
    }

    /// <summary>Where durable sessions are stored, and why not when the store cannot be opened.</summary>
    public static void SessionStore(ILogger log, string where, string? problem)
    {
        log.LogInformation("durable sessions: {Store}", where);
        if (problem is not null)
            log.LogError("The session store is unavailable ({Problem}): durable-session operations answer `unavailable`", problem);
    }

    /// <summary>
    /// Writes the <c>ready:</c> line once this node is Up in the cluster (at once in a cluster of one).
    /// It goes through Akka's log, after the membership lines that led to it (Akka's log is written
    /// asynchronously, a direct write could overtake them), under <paramref name="category"/>. A node
    /// without seed nodes that does not join itself says first that it waits to be told to join.
    /// </summary>
    public static void ReadyWhenUp(string category, ActorSystem system, BrokerEndpoints endpoints, bool dashboard, BrokerClusterSettings cluster)
    {
        var http = BrokerEndpoints.Url(endpoints.Main);
        if (endpoints.MainTls) http = "https" + http["http".Length..];
        var admin = BrokerEndpoints.Url(endpoints.Admin);
        var ws = endpoints.MainTls ? "wss" + http["https".Length..] : "ws" + http["http".Length..];
        var line = $"ready: WebSocket {ws}/ws, dashboard {(dashboard ? http + "/" : "off")}, admin API {admin}/admin (brokerctl --endpoint {admin})";
        var log = Akka.Event.Logging.GetLogger(system, category);
        if (cluster.SeedNodes.Count == 0 && !cluster.SelfJoin)
            log.Info($"not in a cluster (broker.cluster.self-join = off, no seed nodes): waiting to be told to join one, e.g. brokerctl --endpoint {admin} cluster join <address of a member>");
        Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => log.Info(line));
    }
}
