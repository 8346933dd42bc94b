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

/// <summary>Creates topics through a standalone Broker.DevKafka's topic endpoint (multi-process development and tests).</summary>
public sealed class DevKafkaProvisioner(string address, int partitions) : ITopicProvisioner
{
    public Task EnsureTopicAsync(string kafkaTopic, CancellationToken ct) => AdminEndpoint.CreateTopicAsync(address, kafkaTopic, partitions, ct);
}

/// <summary>Topics must exist already (created by whoever owns them).</summary>
public sealed class NoTopicCreation : ITopicProvisioner
{
    public Task EnsureTopicAsync(string kafkaTopic, CancellationToken ct) => Task.CompletedTask;
}
