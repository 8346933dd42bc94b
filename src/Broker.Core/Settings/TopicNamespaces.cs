namespace Broker.Core.Settings;

/// <summary>What happens to a broker topic that no namespace maps (HOCON <c>broker.namespaces-default</c>).</summary>
public enum UnmappedTopics
{
    /// <summary>Served with the default mapping: Kafka topic = <c>topic-prefix</c> + topic, created on first use.</summary>
    Allow,
    /// <summary>Refused with <c>not_found</c>.</summary>
    NotFound,
    /// <summary>Refused with <c>forbidden</c>.</summary>
    Forbidden,
}

/// <summary>How one broker topic maps to Kafka.</summary>
/// <param name="Create">Create the Kafka topic on first use; false: it must exist (else <c>not_found</c>).</param>
/// <param name="ReadOnly">Clients may subscribe but not publish (<c>forbidden</c>): the topic is fed by other Kafka producers.</param>
/// <param name="Retention">retention.ms of a topic the broker creates through the AdminClient; null: the Kafka default.</param>
/// <param name="Multiplexed">
/// The broker topic shares <see cref="KafkaTopic"/> with every topic of its namespace: its records
/// carry the broker topic name as Kafka key and live in one partition (<see cref="SharedPartition"/>).
/// </param>
public sealed record TopicMapping(string KafkaTopic, int Partitions, short ReplicationFactor, bool Create, bool ReadOnly, TimeSpan? Retention, bool Multiplexed = false)
{
    /// <summary>For a multiplexed topic, the partition of the shared Kafka topic that holds it (murmur2 of its name); else -1.</summary>
    public int SharedPartition { get; init; } = -1;
}

/// <summary>
/// One entry of <c>broker.namespaces</c>: broker topics matching <see cref="Pattern"/> map to the Kafka
/// topic <see cref="KafkaTopic"/>, a template in which <c>{topic}</c> stands for the broker topic name.
/// </summary>
/// <param name="Multiplex">Every matching broker topic shares the one Kafka topic <see cref="KafkaTopic"/> (a fixed name), keyed by the broker topic name.</param>
public sealed record NamespaceRule(string Pattern, string KafkaTopic, int Partitions, short ReplicationFactor, bool Create, bool ReadOnly, TimeSpan? Retention, bool Multiplex = false)
{
    private readonly string[] _segments = Pattern.Split('.');

    /// <summary>
    /// Dot-separated segments: <c>*</c> matches exactly one segment, <c>&gt;</c> (last only) one or
    /// more remaining segments, anything else itself.
    /// </summary>
    public bool Matches(string topic)
    {
        var parts = topic.Split('.');
        for (var i = 0; i < _segments.Length; i++)
        {
            var s = _segments[i];
            if (s == ">" && i == _segments.Length - 1) return parts.Length > i;
            if (i >= parts.Length) return false;
            if (s != "*" && s != parts[i]) return false;
        }
        return parts.Length == _segments.Length;
    }

    public TopicMapping Map(string topic) => Multiplex
        ? new(KafkaTopic, Partitions, ReplicationFactor, Create, ReadOnly, Retention, Multiplexed: true)
        {
            SharedPartition = Log.KafkaPartitioner.Partition(System.Text.Encoding.UTF8.GetBytes(topic), Partitions),
        }
        : new(KafkaTopic.Replace("{topic}", topic, StringComparison.Ordinal), Partitions, ReplicationFactor, Create, ReadOnly, Retention);
}
