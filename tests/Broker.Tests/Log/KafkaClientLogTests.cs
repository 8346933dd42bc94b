using Broker.Core.Log;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Broker.Tests.Log;

public sealed class KafkaClientLogTests
{
    [Fact]
    public void At_most_the_burst_is_written_per_window_and_the_rest_is_counted_in_one_line()
    {
        var lines = new Lines();
        var clock = new ManualClock();
        var log = new KafkaClientLog(lines, burst: 2, window: TimeSpan.FromSeconds(10), clock);

        for (var i = 0; i < 5; i++) log.Write(Refused(i));
        Assert.Equal(["Error broker-producer#producer-1 FAIL: refused 0", "Error broker-producer#producer-1 FAIL: refused 1"], lines.Written);

        clock.Advance(TimeSpan.FromSeconds(10));
        log.Write(Refused(5));
        Assert.Equal("Warning 3 more librdkafka lines were suppressed in the last 10 s", lines.Written[2]);
        Assert.Equal("Error broker-producer#producer-1 FAIL: refused 5", lines.Written[3]);
    }

    [Theory]
    [InlineData(SyslogLevel.Critical, LogLevel.Error)]
    [InlineData(SyslogLevel.Warning, LogLevel.Warning)]
    [InlineData(SyslogLevel.Notice, LogLevel.Information)]
    [InlineData(SyslogLevel.Debug, LogLevel.Debug)]
    public void Syslog_levels_map_to_log_levels(SyslogLevel syslog, LogLevel expected)
    {
        var lines = new Lines();
        new KafkaClientLog(lines, 10, TimeSpan.FromSeconds(10)).Write(new LogMessage("c", syslog, "F", "m"));
        Assert.StartsWith(expected.ToString(), Assert.Single(lines.Written));
    }

    private static LogMessage Refused(int n) => new("broker-producer#producer-1", SyslogLevel.Error, "FAIL", $"refused {n}");

    private sealed class Lines : ILogger
    {
        public List<string> Written { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Written.Add($"{logLevel} {formatter(state, exception)}");
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
