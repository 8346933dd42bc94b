using Broker.Protocol;

namespace Broker.Core.Settings;

/// <summary>Whether a broker topic may be used at all on this node (its namespace), before any Kafka call.</summary>
public static class TopicRouting
{
    /// <summary>
    /// Null when the topic has a Kafka mapping that clients may reach; otherwise the error that
    /// refuses it (unmapped topics with <c>namespaces-default</c> <c>not_found</c> or <c>forbidden</c>;
    /// Kafka-internal, denied or too long Kafka names, see <see cref="Security.KafkaTopicNames"/>).
    /// </summary>
    public static ProtocolError? Refusal(KafkaSettings settings, string topic)
    {
        if (settings.Resolve(topic) is { } mapping) return Security.KafkaTopicNames.Refusal(topic, mapping.KafkaTopic, settings.DeniedTopics);
        return settings.Unmapped == UnmappedTopics.Forbidden
            ? new ProtocolError(ErrorCodes.Forbidden, $"topic {topic} is in no namespace")
            : new ProtocolError(ErrorCodes.NotFound, $"topic {topic} is in no namespace");
    }
}
