using Broker.Protocol;

namespace Broker.Core.Security;

/// <summary>
/// Kafka topic names a broker topic may never reach, checked before any Kafka call: Kafka's and its
/// ecosystem's internal topics (names beginning with <c>_</c>: <c>__consumer_offsets</c>,
/// <c>__transaction_state</c>, <c>_schemas</c>, <c>_confluent-*</c>), the names of
/// <c>broker.kafka.denied-topics</c> (exact, or a prefix ending in <c>*</c>, or a suffix starting
/// with <c>*</c>), and names longer than Kafka's 249 characters (with the prefix or template).
/// </summary>
public static class KafkaTopicNames
{
    /// <summary>Kafka's limit on topic names.</summary>
    public const int MaxLength = 249;

    public static ProtocolError? Refusal(string topic, string kafkaTopic, IReadOnlyList<string> denied)
    {
        if (kafkaTopic.StartsWith('_'))
            return new ProtocolError(ErrorCodes.Forbidden, $"topic {topic} maps to the Kafka topic {kafkaTopic}: names beginning with '_' are Kafka-internal");
        foreach (var d in denied)
        {
            var match = d.EndsWith('*') ? kafkaTopic.StartsWith(d[..^1], StringComparison.Ordinal)
                : d.StartsWith('*') ? kafkaTopic.EndsWith(d[1..], StringComparison.Ordinal)
                : kafkaTopic == d;
            if (match) return new ProtocolError(ErrorCodes.Forbidden, $"topic {topic} maps to the Kafka topic {kafkaTopic}, which broker.kafka.denied-topics keeps from clients");
        }
        if (kafkaTopic.Length > MaxLength)
            return new ProtocolError(ErrorCodes.BadRequest, $"topic {topic} maps to a Kafka topic name of {kafkaTopic.Length} characters; Kafka allows {MaxLength}");
        return null;
    }

    /// <summary>What Kafka compares when it looks for colliding names: '.' and '_' are the same to it (metric names).</summary>
    public static string CollisionKey(string kafkaTopic) => kafkaTopic.Replace('.', '_');
}
