using System.Net;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>The embedded, in-memory Kafka-protocol log (HOCON <c>broker.kafka.embedded</c>).</summary>
public sealed record EmbeddedLogSettings
{
    /// <summary>Whether this node runs the embedded log (<c>auto</c>: when no bootstrap servers are set).</summary>
    public required bool Enabled { get; init; }

    /// <summary>The host as configured (for messages).</summary>
    public required string Host { get; init; }

    /// <summary>The address the embedded log listens on.</summary>
    public required IPAddress Address { get; init; }

    /// <summary>Its port; 0 picks a free one.</summary>
    public required int Port { get; init; }

    /// <summary>Binds and validates <c>broker.kafka.embedded</c> (<paramref name="bootstrapServers"/>: as configured).</summary>
    public static EmbeddedLogSettings Bind(SettingsReader r, string bootstrapServers)
    {
        const string key = "broker.kafka.embedded.enabled";
        var enabled = r.Choice<bool?>(key, [("on", true), ("off", false), ("auto", null), ("true", true), ("false", false), ("yes", true), ("no", false)], "on, off or auto");
        if (enabled == false && bootstrapServers.Length == 0)
            throw r.Invalid(key, r.Raw(key), "on or auto while broker.kafka.bootstrap-servers is empty (set BROKER_KAFKA_BOOTSTRAP to use a real Kafka)");
        return new EmbeddedLogSettings
        {
            Enabled = enabled ?? bootstrapServers.Length == 0,
            Host = r.NonEmpty("broker.kafka.embedded.host", "the IP address or host name the embedded log listens on and advertises"),
            Address = ListenAddress.Resolve(r, "broker.kafka.embedded.host"),
            Port = r.Port("broker.kafka.embedded.port"),
        };
    }
}
