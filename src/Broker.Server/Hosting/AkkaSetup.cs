using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Remote.Hosting;
using Broker.Core.Admin;
using Broker.Core.Connections;
using Broker.Core.Log;
using Broker.Core.Serialization;
using Broker.Core.Sessions;
using Broker.Core.Topics;
using Broker.Server.Configuration;
using Broker.Server.Security;

namespace Broker.Server.Hosting;

/// <summary>Marker for the topic shard region in the Akka.Hosting registry.</summary>
public sealed class TopicRegion;

/// <summary>Marker for the topic settings shard region (run-time per-topic settings, persisted).</summary>
public sealed class TopicSettingsRegion;

/// <summary>Marker for the durable-session shard region in the Akka.Hosting registry.</summary>
public sealed class SessionRegion;

/// <summary>Marker for the session sweep singleton in the Akka.Hosting registry.</summary>
public sealed class SessionSweeperKey;

public static class AkkaSetup
{
    public const string SystemName = "broker";
    public const string TopicTypeName = "topic";
    public const string SessionTypeName = "session";

    /// <summary>The scheme of this system's addresses: Akka.Remote's DotNetty transport, over TLS or plain TCP.</summary>
    public static string Protocol(bool tls) => tls ? "akka.ssl.tcp" : "akka.tcp";

    /// <summary>
    /// The actor system: remoting, the cluster (of one unless seed nodes are given), serialization,
    /// the topic shard region, the session store and the durable-session shard region.
    /// </summary>
    public static IServiceCollection AddBrokerAkka(this IServiceCollection services, NodeSettings settings, ClusterTls tls, string sessionStoreConnection)
    {
        services.AddAkka(SystemName, (builder, sp) =>
        {
            var cluster = settings.Cluster;
            string[] seeds = [.. cluster.SeedNodes];
            builder
                .AddHocon(settings.Akka, HoconAddMode.Prepend)
                .AddHocon(SplitBrainResolver(cluster), HoconAddMode.Prepend)
                .AddBrokerLogging(settings.Logging)
                .WithRemoting(tls.Apply(new RemoteOptions
                {
                    HostName = cluster.Hostname,
                    Port = cluster.Port,
                }))
                .WithClustering(new ClusterOptions { SeedNodes = seeds })
                .AddBrokerSerialization()
                .AddSessionPersistence(settings.Persistence, sessionStoreConnection)
                .AddTopicRegion(cluster, new TopicDependencies(
                    sp.GetRequiredService<KafkaLog>(), sp.GetRequiredService<CatchUpReader>(), settings.Topics) { Feeds = sp.GetRequiredService<FeedHub>() })
                .AddSessionRegion(settings.Sessions)
                .AddStartup((system, _) =>
                {
                    // /user/broker-node-info: asked by the admin API of any node (connections, subscribers, drain).
                    system.ActorOf(NodeInfoActor.Props(sp.GetRequiredService<ConnectionRegistry>(), sp.GetRequiredService<FeedHub>(),
                        Cluster.Get(system).SelfAddress.ToString()), NodeInfo.ActorName);
                });
            if (seeds.Length == 0 && cluster.SelfJoin)
            {
                // A cluster of one: join ourselves.
                builder.AddStartup((system, _) =>
                {
                    var cluster = Cluster.Get(system);
                    cluster.Join(cluster.SelfAddress);
                });
            }
        });
        return services;
    }

    private static Config SplitBrainResolver(BrokerClusterSettings cluster) => ConfigurationFactory.ParseString($"""
        akka.cluster.split-brain-resolver {"{"}
          active-strategy = {cluster.SplitBrainStrategy}
          stable-after = {(long)cluster.StableAfter.TotalMilliseconds}ms
          down-all-when-unstable = {(long)cluster.DownAllWhenUnstable.TotalMilliseconds}ms
        {"}"}
        """ + (cluster.QuorumSize > 0 ? $"\nakka.cluster.split-brain-resolver.static-quorum.quorum-size = {cluster.QuorumSize}" : ""));

    public static AkkaConfigurationBuilder AddBrokerSerialization(this AkkaConfigurationBuilder builder) =>
        builder.WithCustomSerializer("broker", [typeof(IBrokerMessage)], system => new BrokerSerializer(system));

    public const string TopicSettingsTypeName = "topic-settings";

    /// <summary>
    /// The topic region and the region of topic settings. Topic actors get their settings from the
    /// latter (resolved when an entity starts, so both are registered by then).
    /// </summary>
    public static AkkaConfigurationBuilder AddTopicRegion(this AkkaConfigurationBuilder builder, BrokerClusterSettings cluster, TopicDependencies deps)
    {
        var shards = cluster.TopicShards;
        var passivate = cluster.PassivateIdleAfter;
        // Topic entities are cheap to restart: no remembered entities, idle ones passivate.
        ShardOptions Options(bool passivateIdle = true) => new()
        {
            StateStoreMode = StateStoreMode.DData,
            RememberEntities = false,
            PassivateIdleEntityAfter = passivate,
            ShouldPassivateIdleEntities = passivateIdle,
        };
        var topicOptions = Options();
        // A topic's writer leaving its node (hand-off, passivation) first waits for Kafka's answer
        // to every record it sent, so the next writer reads them all back.
        topicOptions.HandOffStopMessage = TopicActor.Stop.Instance;
        return builder
            .WithShardRegion<TopicRegion>(
                TopicTypeName,
                (_, registry, _) => topic => TopicActor.Props(topic, deps with { SettingsRegion = registry.Get<TopicSettingsRegion>() }),
                new TopicMessageExtractor(shards),
                topicOptions)
            .WithShardRegion<TopicSettingsRegion>(
                TopicSettingsTypeName,
                (_, registry, _) => bucket => TopicSettingsActor.Props(bucket, registry.Get<TopicRegion>()),
                new TopicSettingsMessageExtractor(shards),
                Options(passivateIdle: false)); // 64 small buckets: each recovered at its first use, then kept
    }

    /// <summary>
    /// Durable sessions: one persistent actor per session id, and the cluster's session sweep (a
    /// singleton) that makes stored sessions check their expiry. Sharding state stays in DData;
    /// sessions are not remembered entities: a session passivates itself when no connection is
    /// attached (sharding's idle passivation would also stop attached ones) and expiry is driven by
    /// what it stores (see <see cref="SessionActor"/>, <see cref="SessionSweeper"/>).
    /// </summary>
    public static AkkaConfigurationBuilder AddSessionRegion(this AkkaConfigurationBuilder builder, SessionSettings settings)
    {
        return builder
            .WithShardRegion<SessionRegion>(
                SessionTypeName,
                session => SessionActor.Props(session, settings),
                new SessionMessageExtractor(settings.Shards),
                new ShardOptions
                {
                    StateStoreMode = StateStoreMode.DData,
                    RememberEntities = false,
                    ShouldPassivateIdleEntities = false,
                })
            .WithSingleton<SessionSweeperKey>(
                "session-sweeper",
                (system, registry, _) => SessionSweeper.Props(
                    registry.Get<SessionRegion>(),
                    () => PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier).CurrentPersistenceIds(),
                    settings),
                new ClusterSingletonOptions(),
                createProxyToo: false);
    }
}
