using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.DevKafka;

namespace Broker.Tests.Infrastructure;

/// <summary>Creates topics on the mock cluster with the mapping's partitions (its auto-created topics would get 4).</summary>
public sealed class MockClusterProvisioner(MockKafkaCluster cluster) : ITopicProvisioner
{
    public Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct)
    {
        cluster.CreateTopic(mapping.KafkaTopic, mapping.Partitions);
        return Task.CompletedTask;
    }
}
