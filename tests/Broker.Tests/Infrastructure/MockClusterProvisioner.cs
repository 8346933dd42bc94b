using Broker.Core.Log;
using Broker.DevKafka;

namespace Broker.Tests.Infrastructure;

/// <summary>Creates single-partition topics on the mock cluster (its auto-created topics get 4 partitions).</summary>
public sealed class MockClusterProvisioner(MockKafkaCluster cluster) : ITopicProvisioner
{
    public Task EnsureTopicAsync(string kafkaTopic, CancellationToken ct)
    {
        cluster.CreateTopic(kafkaTopic, 1);
        return Task.CompletedTask;
    }
}
