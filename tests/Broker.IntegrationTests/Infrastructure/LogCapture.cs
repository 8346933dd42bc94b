using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>Collects the log lines a running broker writes (added to its logger factory), so tests can count them.</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<(string Category, LogLevel Level, string Message)> _lines = new();

    /// <summary>Captures what a running broker logs from now on (see TestBroker.StartAsync's <c>log</c> for what it logs while starting).</summary>
    public static LogCapture Attach(TestBroker broker)
    {
        var capture = new LogCapture();
        capture.AttachTo(broker.App);
        return capture;
    }

    public void AttachTo(Microsoft.AspNetCore.Builder.WebApplication app) =>
        app.Services.GetRequiredService<ILoggerFactory>().AddProvider(this);

    public IReadOnlyList<(string Category, LogLevel Level, string Message)> Lines => [.. _lines];

    public int Count(string category, string contains) =>
        _lines.Count(l => l.Category == category && l.Message.Contains(contains, StringComparison.Ordinal));

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    private sealed class Logger(LogCapture capture, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            capture._lines.Enqueue((category, logLevel, formatter(state, exception)));
    }
}
