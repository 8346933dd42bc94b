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
public sealed record TopicMapping(string KafkaTopic, int Partitions, short ReplicationFactor, bool Create, bool ReadOnly, TimeSpan? Retention);

/// <summary>
/// One entry of <c>broker.namespaces</c>: broker topics matching <see cref="Pattern"/> map to the Kafka
/// topic <see cref="KafkaTopic"/>, a template in which <c>{topic}</c> stands for the broker topic name.
/// </summary>
public sealed record NamespaceRule(string Pattern, string KafkaTopic, int Partitions, short ReplicationFactor, bool Create, bool ReadOnly, TimeSpan? Retention)
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

    public TopicMapping Map(string topic) => new(KafkaTopic.Replace("{topic}", topic, StringComparison.Ordinal), Partitions, ReplicationFactor, Create, ReadOnly, Retention);

    /// <summary>The fields a namespace entry may set (others are reported as unknown keys).</summary>
    public static readonly IReadOnlyList<string> Fields = ["pattern", "kafka-topic", "kafka-prefix", "partitions", "replication-factor", "create", "read-only", "retention"];

    /// <summary>
    /// Binds <c>broker.namespaces</c>: a list of {pattern, kafka-topic (a template with {topic}) or
    /// kafka-prefix, partitions, replication-factor, create, read-only, retention}. What an entry
    /// leaves out comes from <c>broker.namespace-defaults</c>, from the kafka section's partitions and
    /// replication-factor, and from <paramref name="topicPrefix"/> (Kafka topic = prefix + topic).
    /// </summary>
    public static IReadOnlyList<NamespaceRule> BindAll(SettingsReader r, string topicPrefix, int partitions, short replicationFactor)
    {
        var create = r.Switch("broker.namespace-defaults.create");
        var readOnly = r.Switch("broker.namespace-defaults.read-only");
        var rules = new List<NamespaceRule>();
        foreach (var n in r.ObjectList("broker.namespaces"))
        {
            var pattern = n.NonEmpty("pattern", "a topic pattern such as orders.* or prices.>");
            var template = n.Has("kafka-topic") ? n.NonEmpty("kafka-topic", "a Kafka topic name, {topic} standing for the broker topic")
                : (n.Has("kafka-prefix") ? n.String("kafka-prefix").Trim() : topicPrefix) + "{topic}";
            rules.Add(new NamespaceRule(
                pattern,
                template,
                n.Has("partitions") ? n.Int("partitions", 1, Broker.Protocol.Position.MaxPartitions) : partitions,
                n.Has("replication-factor") ? (short)n.Int("replication-factor", 1, short.MaxValue) : replicationFactor,
                n.Has("create") ? n.Switch("create") : create,
                n.Has("read-only") ? n.Switch("read-only") : readOnly,
                n.Has("retention") ? n.Duration("retention") : null));
        }
        return rules;
    }
}
