using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>How the Kafka topics behind broker topics are created.</summary>
public enum TopicCreationMode
{
    /// <summary>The Kafka AdminClient (a real Kafka cluster).</summary>
    Admin,
    /// <summary>The embedded log's own call (the mock cluster implements no CreateTopics).</summary>
    Embedded,
    /// <summary>A standalone Broker.DevKafka's topic endpoint.</summary>
    DevKafka,
    /// <summary>Topics must exist already.</summary>
    None,
}

/// <summary>Topic creation (HOCON <c>broker.kafka.topic-creation</c> and <c>broker.kafka.devkafka-admin</c>).</summary>
public sealed record TopicCreationSettings
{
    /// <summary>The mode (an empty setting: embedded with the embedded log, else admin).</summary>
    public required TopicCreationMode Mode { get; init; }

    /// <summary>host:port of a standalone Broker.DevKafka's topic endpoint (mode <see cref="TopicCreationMode.DevKafka"/>).</summary>
    public required string DevKafkaAdmin { get; init; }

    /// <summary>Binds and validates topic creation; <paramref name="embeddedLog"/>: whether the node runs the embedded log.</summary>
    public static TopicCreationSettings Bind(SettingsReader r, bool embeddedLog)
    {
        const string key = "broker.kafka.topic-creation";
        var mode = r.Choice<TopicCreationMode?>(key,
            [("", null), ("admin", TopicCreationMode.Admin), ("embedded", TopicCreationMode.Embedded), ("devkafka", TopicCreationMode.DevKafka), ("none", TopicCreationMode.None)])
            ?? (embeddedLog ? TopicCreationMode.Embedded : TopicCreationMode.Admin);
        if (mode == TopicCreationMode.Embedded && !embeddedLog)
            throw r.Invalid(key, r.Raw(key), "admin, devkafka or none: the embedded log does not run (broker.kafka.embedded.enabled)");
        const string admin = "broker.kafka.devkafka-admin";
        var address = r.NonEmpty(admin, "host:port of Broker.DevKafka's topic endpoint");
        var colon = address.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(address[(colon + 1)..], out var port) || port is < 1 or > 65535)
            throw r.Invalid(admin, address, "host:port of Broker.DevKafka's topic endpoint, such as 127.0.0.1:10092");
        return new TopicCreationSettings { Mode = mode, DevKafkaAdmin = address };
    }
}
