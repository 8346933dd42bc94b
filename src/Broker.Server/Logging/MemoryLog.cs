using System.Threading.Channels;

namespace Broker.Server.Logging;

/// <summary>One line of the node's log as the in-memory log keeps it.</summary>
public sealed record LogLine(long Seq, DateTimeOffset Time, LogLevel Level, string Category, string Message, string? Exception);

/// <summary>
/// A logger provider that keeps the node's most recent log lines in memory (a ring of
/// <c>broker.logging.memory-lines</c>, each message cut at <c>memory-max-line</c> characters) for
/// <c>brokerctl log tail</c>, and hands new lines to followers (<c>log tail --follow</c>). It sees
/// what the node's filters let through, Akka's log included. A follower that falls a ring's worth
/// of lines behind is dropped with an error rather than slowing the logger down.
/// </summary>
public sealed class MemoryLog(int capacity, int maxLineChars) : ILoggerProvider
{
    private readonly LogLine?[] _ring = new LogLine?[Math.Max(1, capacity)];
    private readonly Lock _gate = new();
    private long _seq;
    private ChannelWriter<LogLine>[] _followers = [];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>Up to <paramref name="count"/> most recent lines, oldest first.</summary>
    public IReadOnlyList<LogLine> Recent(int count)
    {
        lock (_gate) return RecentLocked(count);
    }

    /// <summary>
    /// The last <paramref name="count"/> lines and, from the next line on, every new one into the
    /// returned reader (no line lost or repeated between the two) until the subscription is disposed.
    /// </summary>
    public (IReadOnlyList<LogLine> Backlog, ChannelReader<LogLine> Live, IDisposable Subscription) Follow(int count)
    {
        var channel = Channel.CreateBounded<LogLine>(new BoundedChannelOptions(_ring.Length) { SingleReader = true });
        lock (_gate)
        {
            _followers = [.. _followers, channel.Writer];
            return (RecentLocked(count), channel.Reader, new Unsubscribe(this, channel.Writer));
        }
    }

    private IReadOnlyList<LogLine> RecentLocked(int count)
    {
        var n = (int)Math.Min(Math.Clamp(count, 0, _ring.Length), _seq);
        var lines = new LogLine[n];
        for (var i = 0; i < n; i++) lines[i] = _ring[(_seq - n + i) % _ring.Length]!;
        return lines;
    }

    private void Append(LogLevel level, string category, string message, Exception? exception)
    {
        if (message.Length > maxLineChars) message = string.Concat(message.AsSpan(0, maxLineChars), "…");
        var error = exception?.ToString();
        if (error is not null && error.Length > maxLineChars) error = string.Concat(error.AsSpan(0, maxLineChars), "…");
        ChannelWriter<LogLine>[] followers;
        LogLine line;
        lock (_gate)
        {
            line = new LogLine(++_seq, DateTimeOffset.UtcNow, level, category, message, error);
            _ring[(line.Seq - 1) % _ring.Length] = line;
            followers = _followers;
        }
        foreach (var f in followers)
        {
            if (!f.TryWrite(line)) f.TryComplete(new InvalidOperationException($"the follower fell {_ring.Length} lines behind the node's log and was dropped"));
        }
    }

    private void Remove(ChannelWriter<LogLine> writer)
    {
        lock (_gate) _followers = [.. _followers.Where(f => f != writer)];
        writer.TryComplete();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var f in _followers) f.TryComplete();
            _followers = [];
        }
    }

    private sealed class Unsubscribe(MemoryLog log, ChannelWriter<LogLine> writer) : IDisposable
    {
        public void Dispose() => log.Remove(writer);
    }

    private sealed class Logger(MemoryLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            log.Append(logLevel, category, formatter(state, exception), exception);
        }
    }
}
