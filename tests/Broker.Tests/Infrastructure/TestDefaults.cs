using Broker.Core.Sessions;
using Broker.Core.Settings;
using Broker.Core.Publish;

namespace Broker.Tests.Infrastructure;

/// <summary>
/// Settings records with the defaults of hocon/broker.conf (built into Broker.Core, see
/// <see cref="BrokerDefaults"/>): tests change only what they test, with <c>with { … }</c>.
/// </summary>
public static class TestDefaults
{
    /// <summary><c>broker.kafka</c> (and the namespaces) of the defaults, reaching Kafka at <paramref name="bootstrapServers"/>.</summary>
    public static KafkaSettings Kafka(string bootstrapServers = "") => KafkaSettings.Bind(Reader()) with { BootstrapServers = bootstrapServers };

    /// <summary><c>broker.websocket</c> of the defaults.</summary>
    public static ConnectionSettings Connection => ConnectionSettings.Bind(Reader());

    /// <summary><c>broker.topics</c> of the defaults.</summary>
    public static TopicSettings Topics => TopicSettings.Bind(Reader());

    /// <summary><c>broker.sessions</c> of the defaults.</summary>
    public static SessionSettings Sessions => SessionSettings.Bind(Reader());

    /// <summary><c>broker.fanout.offset-index</c> of the defaults.</summary>
    public static Broker.Core.Fanout.OffsetIndexSettings OffsetIndex => Broker.Core.Fanout.OffsetIndexSettings.Bind(Reader());

    private static SettingsReader Reader() => new(BrokerDefaults.Config);
}
