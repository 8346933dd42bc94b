using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Log;

/// <summary>
/// librdkafka's own log lines (connection failures, metadata errors, …) routed through the node's
/// logger, so they honour the log format (text or JSON) instead of going raw to stderr, and rate
/// limited: while Kafka is unreachable every client of the node reports every reconnect attempt,
/// which would print dozens of lines per second. At most <c>burst</c> lines are written per
/// <c>window</c>; the rest are counted and summed up in one line when the next window starts (with
/// the first line written in it).
/// Attach it with <c>.WithLog(log)</c> on every Kafka client builder.
/// </summary>
/// <param name="time">The clock of the windows (tests pass their own).</param>
public sealed class KafkaClientLog(ILogger logger, int burst, TimeSpan window, TimeProvider? time = null)
{
    /// <summary>The category of librdkafka's lines in the node's log.</summary>
    public const string Category = "librdkafka";

    private readonly Lock _gate = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private long _windowStart = (time ?? TimeProvider.System).GetTimestamp();
    private int _written;
    private int _suppressed;

    /// <summary>Writes one librdkafka line (called on librdkafka's threads), unless the window's burst is used up.</summary>
    public void Write(LogMessage message)
    {
        int suppressed;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            suppressed = 0;
            if (_time.GetElapsedTime(_windowStart, now) >= window)
            {
                suppressed = _suppressed;
                _windowStart = now;
                _written = 0;
                _suppressed = 0;
            }
            if (_written >= burst)
            {
                _suppressed++;
                return;
            }
            _written++;
        }
        if (suppressed > 0)
            logger.LogWarning("{Suppressed} more librdkafka lines were suppressed in the last {Window:0.#} s", suppressed, window.TotalSeconds);
        logger.Log(LevelOf(message.Level), "{Client} {Facility}: {Message}", message.Name, message.Facility, message.Message);
    }

    private static LogLevel LevelOf(SyslogLevel level) => level switch
    {
        SyslogLevel.Emergency or SyslogLevel.Alert or SyslogLevel.Critical or SyslogLevel.Error => LogLevel.Error,
        SyslogLevel.Warning => LogLevel.Warning,
        SyslogLevel.Notice or SyslogLevel.Info => LogLevel.Information,
        _ => LogLevel.Debug,
    };
}

/// <summary>Attaches a <see cref="KafkaClientLog"/> to Kafka client builders (none given: librdkafka's default log).</summary>
public static class KafkaClientLogExtensions
{
    public static ProducerBuilder<TKey, TValue> WithLog<TKey, TValue>(this ProducerBuilder<TKey, TValue> builder, KafkaClientLog? log) =>
        log is null ? builder : builder.SetLogHandler((_, m) => log.Write(m));

    public static ConsumerBuilder<TKey, TValue> WithLog<TKey, TValue>(this ConsumerBuilder<TKey, TValue> builder, KafkaClientLog? log) =>
        log is null ? builder : builder.SetLogHandler((_, m) => log.Write(m));

    public static AdminClientBuilder WithLog(this AdminClientBuilder builder, KafkaClientLog? log) =>
        log is null ? builder : builder.SetLogHandler((_, m) => log.Write(m));
}
