using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Broker.Core.Log;
using Broker.Core.Topics;

namespace Broker.Server.Hosting;

/// <summary>Marker for the topic shard region in the Akka.Hosting registry.</summary>
public sealed class TopicRegion;

public static class AkkaSetup
{
    public const string SystemName = "broker";
    public const string TopicTypeName = "topic";

    /// <summary>The actor system: remoting, a cluster (of one by default) and the topic shard region.</summary>
    public static IServiceCollection AddBrokerAkka(this IServiceCollection services, Config config)
    {
        services.AddAkka(SystemName, (builder, sp) =>
        {
            builder
                .AddHocon(config, HoconAddMode.Prepend)
                .ConfigureLoggers(l =>
                {
                    l.ClearLoggers();
                    l.AddLoggerFactory();
                })
                .WithRemoting(new RemoteOptions
                {
                    HostName = config.GetString("broker.cluster.hostname"),
                    Port = config.GetInt("broker.cluster.port"),
                })
                .WithClustering(new ClusterOptions())
                .AddTopicRegion(config, sp.GetRequiredService<KafkaLog>())
                .AddStartup((system, _) =>
                {
                    // A cluster of one: join ourselves. (Seed nodes come with the cluster work.)
                    var cluster = Cluster.Get(system);
                    cluster.Join(cluster.SelfAddress);
                });
        });
        return services;
    }

    public static AkkaConfigurationBuilder AddTopicRegion(this AkkaConfigurationBuilder builder, Config config, KafkaLog log) =>
        builder.WithShardRegion<TopicRegion>(
            TopicTypeName,
            topic => TopicActor.Props(topic, log),
            new TopicMessageExtractor(config.GetInt("broker.cluster.topic-shards")),
            new ShardOptions
            {
                StateStoreMode = StateStoreMode.DData,
                RememberEntities = false,
                PassivateIdleEntityAfter = config.GetTimeSpan("broker.cluster.passivate-idle-after"),
                ShouldPassivateIdleEntities = true,
            });
}
