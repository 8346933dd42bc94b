using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>Console log formats.</summary>
public enum LogFormat
{
    /// <summary>One line per entry, with a time of day.</summary>
    Text,
    /// <summary>One JSON object per line (UTC timestamps), for log shippers.</summary>
    Json,
}

/// <summary>The node's log (HOCON <c>broker.logging</c>).</summary>
public sealed record LoggingSettings
{
    /// <summary>The console format.</summary>
    public required LogFormat Format { get; init; }

    /// <summary>Entries below this level are not written (Akka's log included).</summary>
    public required LogLevel Level { get; init; }

    /// <summary>Whether ASP.NET Core logs every HTTP request (two lines each, health probes included).</summary>
    public required bool Requests { get; init; }

    /// <summary>Log categories (prefixes) written only from warning up: start-up chatter of Akka's internals and the host.</summary>
    public required IReadOnlyList<string> Quiet { get; init; }

    /// <summary>librdkafka's own lines written per <see cref="KafkaLogWindow"/> at most (the rest are counted).</summary>
    public required int KafkaLogBurst { get; init; }

    /// <summary>The window of <see cref="KafkaLogBurst"/>.</summary>
    public required TimeSpan KafkaLogWindow { get; init; }

    /// <summary>Most recent lines the node keeps in memory for <c>brokerctl log tail</c>.</summary>
    public required int MemoryLines { get; init; }

    /// <summary>A line kept in memory is cut at this many characters.</summary>
    public required int MemoryMaxLine { get; init; }

    /// <summary>Binds and validates <c>broker.logging</c>.</summary>
    public static LoggingSettings Bind(SettingsReader r) => new()
    {
        Format = r.Choice("broker.logging.format", [("text", LogFormat.Text), ("json", LogFormat.Json)]),
        Level = r.Choice("broker.logging.level",
            [("debug", LogLevel.Debug), ("info", LogLevel.Information), ("warning", LogLevel.Warning), ("error", LogLevel.Error)]),
        Requests = r.Switch("broker.logging.requests"),
        Quiet = r.StringList("broker.logging.quiet"),
        KafkaLogBurst = r.Int("broker.logging.kafka-log-burst", 1),
        KafkaLogWindow = r.Duration("broker.logging.kafka-log-window"),
        MemoryLines = r.Int("broker.logging.memory-lines", 1),
        MemoryMaxLine = r.Int("broker.logging.memory-max-line", 80),
    };
}
