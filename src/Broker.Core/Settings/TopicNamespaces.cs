using Broker.Core.Security;

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

    /// <summary>A multiplexed namespace's shared Kafka topic as a mapping of its own (no broker topic: <see cref="TopicMapping.SharedPartition"/> is -1).</summary>
    public TopicMapping SharedMapping() => new(KafkaTopic, Partitions, ReplicationFactor, Create, ReadOnly, Retention, Multiplexed: true);

    /// <summary>Who may subscribe to the namespace's topics (its <c>subscribe</c> key); null: <c>broker.auth.default-access.subscribe</c>.</summary>
    public AccessLevel? Subscribe { get; init; }

    /// <summary>Who may publish on the namespace's topics (its <c>publish</c> key); null: <c>broker.auth.default-access.publish</c>.</summary>
    public AccessLevel? Publish { get; init; }

    /// <summary>The fields a namespace entry may set (others are reported as unknown keys).</summary>
    public static readonly IReadOnlyList<string> Fields =
        ["pattern", "kafka-topic", "kafka-prefix", "partitions", "replication-factor", "create", "read-only", "retention", "multiplex", "subscribe", "publish"];

    /// <summary>The names of the access levels a namespace's <c>subscribe</c> and <c>publish</c> (and <c>broker.auth.default-access</c>) take.</summary>
    public static readonly (string Name, AccessLevel Value)[] AccessLevels =
        [("anonymous", AccessLevel.Anonymous), ("authenticated", AccessLevel.Authenticated), ("granted", AccessLevel.Granted)];

    /// <summary>
    /// Binds <c>broker.namespaces</c>: a list of {pattern, kafka-topic (a template with {topic}) or
    /// kafka-prefix, partitions, replication-factor, create, read-only, retention, multiplex,
    /// subscribe, publish}. What an entry leaves out comes from <c>broker.namespace-defaults</c>, from
    /// the kafka section's partitions and replication-factor, and from <paramref name="topicPrefix"/>
    /// (Kafka topic = prefix + topic); an access level left out is the <c>broker.auth.default-access</c>
    /// one (null here). A multiplexed namespace needs a fixed <c>kafka-topic</c>.
    /// </summary>
    public static IReadOnlyList<NamespaceRule> BindAll(SettingsReader r, string topicPrefix, int partitions, short replicationFactor)
    {
        var create = r.Switch("broker.namespace-defaults.create");
        var readOnly = r.Switch("broker.namespace-defaults.read-only");
        var multiplex = r.Switch("broker.namespace-defaults.multiplex");
        var rules = new List<NamespaceRule>();
        foreach (var n in r.ObjectList("broker.namespaces"))
        {
            var pattern = n.NonEmpty("pattern", "a topic pattern such as orders.* or prices.>");
            var fixedTopic = n.Has("kafka-topic") ? n.NonEmpty("kafka-topic", "a Kafka topic name, {topic} standing for the broker topic") : null;
            var template = fixedTopic ?? (n.Has("kafka-prefix") ? n.String("kafka-prefix").Trim() : topicPrefix) + "{topic}";
            var shared = n.Has("multiplex") ? n.Switch("multiplex") : multiplex;
            if (shared && fixedTopic is null)
                throw n.Invalid("multiplex", n.Raw("multiplex") ?? "on", "off unless kafka-topic names the one Kafka topic every topic of the namespace shares, e.g. kafka-topic = \"broker.users\"");
            if (shared && fixedTopic!.Contains("{topic}", StringComparison.Ordinal))
                throw n.Invalid("kafka-topic", fixedTopic, "a fixed Kafka topic name with multiplex = on (the one topic every topic of the namespace shares), without {topic}");
            rules.Add(new NamespaceRule(
                pattern,
                template,
                n.Has("partitions") ? n.Int("partitions", 1, Broker.Protocol.Position.MaxPartitions) : partitions,
                n.Has("replication-factor") ? (short)n.Int("replication-factor", 1, short.MaxValue) : replicationFactor,
                n.Has("create") ? n.Switch("create") : create,
                n.Has("read-only") ? n.Switch("read-only") : readOnly,
                n.Has("retention") ? n.Duration("retention") : null,
                shared)
            {
                Subscribe = n.Has("subscribe") ? n.Choice("subscribe", AccessLevels) : null,
                Publish = n.Has("publish") ? n.Choice("publish", AccessLevels) : null,
            });
        }
        return rules;
    }
}
