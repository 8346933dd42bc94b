using Broker.Core.Settings;

namespace Broker.Core.Publish;

/// <summary>Settings of topic actors (HOCON <c>broker.topics</c>).</summary>
public sealed record TopicSettings
{
    /// <summary>Recent publishes remembered per topic to answer retries (same client and id) with the original ack.</summary>
    public required int DedupWindow { get; init; }

    /// <summary>
    /// Time kept in reserve before a publish's deadline for Kafka's answer to reach the client's node
    /// (and for clock differences between nodes): a publish is handed to Kafka only while at least
    /// produce-timeout plus this margin are left.
    /// </summary>
    public required TimeSpan AnswerMargin { get; init; }

    /// <summary>How long a starting topic actor waits for its persisted run-time settings (read-only) before the defaults apply.</summary>
    public required TimeSpan SettingsTimeout { get; init; }

    /// <summary>When the settings store did not answer, the topic actor asks again after this long.</summary>
    public required TimeSpan SettingsRetry { get; init; }

    /// <summary>Longest a starting topic actor reads the log's tail to rebuild its window of recent publishes.</summary>
    public required TimeSpan RecoveryTimeout { get; init; }

    /// <summary>While publishes whose outcome is unknown remain, the topic actor reads the log's tail back again after this long.</summary>
    public required TimeSpan SettleRetry { get; init; }

    /// <summary>Binds and validates <c>broker.topics</c>.</summary>
    public static TopicSettings Bind(SettingsReader r)
    {
        var settings = new TopicSettings
        {
            DedupWindow = r.Int("broker.topics.dedup-window", 0),
            AnswerMargin = r.Duration("broker.topics.answer-margin"),
            SettingsTimeout = r.Duration("broker.topics.settings-timeout"),
            SettingsRetry = r.Duration("broker.topics.settings-retry"),
            RecoveryTimeout = r.Duration("broker.topics.recovery-timeout"),
            SettleRetry = r.Duration("broker.topics.settle-retry"),
        };
        // A writer hands a publish to Kafka only while Kafka's answer can still reach the client:
        // with less time than this, no publish would ever be written.
        var produce = r.Duration("broker.kafka.produce-timeout");
        var request = r.Duration("broker.websocket.request-timeout");
        if (produce + settings.AnswerMargin >= request)
            throw r.Invalid("broker.topics.answer-margin", r.Raw("broker.topics.answer-margin"),
                $"less than broker.websocket.request-timeout ({request.TotalSeconds:0.###}s) - broker.kafka.produce-timeout ({produce.TotalSeconds:0.###}s)");
        return settings;
    }
}
