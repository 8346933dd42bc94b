using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.DevKafka;

namespace Broker.Server.Hosting;

/// <summary>Creates topics through the embedded log's own call (the mock does not implement CreateTopics).</summary>
public sealed class EmbeddedKafkaProvisioner(MockKafkaCluster cluster) : ITopicProvisioner
{
    /// <summary>With the mapping's partition count (retention and replication do not apply to the in-memory log).</summary>
    public Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct)
    {
        cluster.CreateTopic(mapping.KafkaTopic, mapping.Partitions);
        return Task.CompletedTask;
    }
}

/// <summary>Creates topics through a standalone Broker.DevKafka's topic endpoint (multi-process development and tests).</summary>
public sealed class DevKafkaProvisioner(string address) : ITopicProvisioner
{
    public Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct) => AdminEndpoint.CreateTopicAsync(address, mapping.KafkaTopic, mapping.Partitions, ct);
}

/// <summary>Topics must exist already (created by whoever owns them).</summary>
public sealed class NoTopicCreation : ITopicProvisioner
{
    public Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct) => Task.CompletedTask;
}
