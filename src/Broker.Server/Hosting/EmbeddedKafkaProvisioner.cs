using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.DevKafka;

namespace Broker.Server.Hosting;

/// <summary>Creates topics through the embedded log's own call (the mock does not implement CreateTopics).</summary>
public sealed class EmbeddedKafkaProvisioner(MockKafkaCluster cluster, int partitions) : ITopicProvisioner
{
    public Task EnsureTopicAsync(string kafkaTopic, CancellationToken ct) => Create(kafkaTopic, partitions);

    /// <summary>With the namespace's partition count (retention and replication do not apply to the in-memory log).</summary>
    public Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct) => Create(mapping.KafkaTopic, mapping.Partitions);

    private Task Create(string kafkaTopic, int count)
    {
        cluster.CreateTopic(kafkaTopic, count);
        return Task.CompletedTask;
    }
}

/// <summary>Creates topics through a standalone Broker.DevKafka's topic endpoint (multi-process development and tests).</summary>
public sealed class DevKafkaProvisioner(string address, int partitions) : ITopicProvisioner
{
    public Task EnsureTopicAsync(string kafkaTopic, CancellationToken ct) => AdminEndpoint.CreateTopicAsync(address, kafkaTopic, partitions, ct);

    public Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct) => AdminEndpoint.CreateTopicAsync(address, mapping.KafkaTopic, mapping.Partitions, ct);
}

/// <summary>Topics must exist already (created by whoever owns them).</summary>
public sealed class NoTopicCreation : ITopicProvisioner
{
    public Task EnsureTopicAsync(string kafkaTopic, CancellationToken ct) => Task.CompletedTask;
}
