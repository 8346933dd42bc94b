using Broker.Core.Settings;

namespace Broker.Core.Publish;

/// <summary>Settings of topic actors (HOCON <c>broker.topics</c>).</summary>
public sealed record TopicSettings
{
    /// <summary>Recent publishes remembered per topic to answer retries (same client and id) with the original ack.</summary>
    public required int DedupWindow { get; init; }

    /// <summary>How long a starting topic actor waits for its persisted run-time settings (read-only) before the defaults apply.</summary>
    public required TimeSpan SettingsTimeout { get; init; }

    /// <summary>When the settings store did not answer, the topic actor asks again after this long.</summary>
    public required TimeSpan SettingsRetry { get; init; }

    /// <summary>Longest a starting topic actor reads the log's tail to rebuild its window of recent publishes.</summary>
    public required TimeSpan RecoveryTimeout { get; init; }

    /// <summary>Binds and validates <c>broker.topics</c>.</summary>
    public static TopicSettings Bind(SettingsReader r) => new()
    {
        DedupWindow = r.Int("broker.topics.dedup-window", 0),
        SettingsTimeout = r.Duration("broker.topics.settings-timeout"),
        SettingsRetry = r.Duration("broker.topics.settings-retry"),
        RecoveryTimeout = r.Duration("broker.topics.recovery-timeout"),
    };
}
