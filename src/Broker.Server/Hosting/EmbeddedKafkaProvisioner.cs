using Broker.Core.Log;
using Broker.DevKafka;

namespace Broker.Server.Hosting;

/// <summary>Creates topics through the embedded log's own call (the mock does not implement CreateTopics).</summary>
public sealed class EmbeddedKafkaProvisioner(MockKafkaCluster cluster, int partitions) : ITopicProvisioner
{
    public Task EnsureTopicAsync(string kafkaTopic, CancellationToken ct)
    {
        cluster.CreateTopic(kafkaTopic, partitions);
        return Task.CompletedTask;
    }
}
