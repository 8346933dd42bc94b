using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Broker.Server.Logging;

/// <summary>
/// The node's minimum log level, changed at run time (<c>brokerctl log set-level</c>): a post-configure
/// step of Microsoft.Extensions.Logging's filter options plus a change token that makes the
/// logger factory re-read them, so every logger (Akka's included) follows at once. With an
/// override, the default level and every category rule more verbose than it become the override;
/// categories the configuration quiets further (for example per-request logs) stay quiet.
/// Without one (<see cref="Reset"/>), the configured filters apply as they were.
/// </summary>
public sealed class LogLevelSwitch : IOptionsChangeTokenSource<LoggerFilterOptions>, IPostConfigureOptions<LoggerFilterOptions>
{
    private CancellationTokenSource _changed = new();
    private LogLevel? _override;

    /// <summary>The level set at run time; null: the configured filters.</summary>
    public LogLevel? Override => _override;

    public string? Name => Options.DefaultName;

    public IChangeToken GetChangeToken() => new CancellationChangeToken(Volatile.Read(ref _changed).Token);

    public void Set(LogLevel level) => Change(level);

    public void Reset() => Change(null);

    private void Change(LogLevel? level)
    {
        _override = level;
        Interlocked.Exchange(ref _changed, new CancellationTokenSource()).Cancel();
    }

    public void PostConfigure(string? name, LoggerFilterOptions options)
    {
        if (_override is not { } level) return;
        options.MinLevel = level;
        for (var i = 0; i < options.Rules.Count; i++)
        {
            var r = options.Rules[i];
            if (r.Filter is not null || r.LogLevel is not { } ruleLevel) continue;
            if (r.CategoryName is null || ruleLevel < level)
                options.Rules[i] = new LoggerFilterRule(r.ProviderName, r.CategoryName, level, null);
        }
    }
}
