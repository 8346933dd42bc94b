using Akka.Hosting;
using Broker.Core.Log;
using Broker.Server.Configuration;

namespace Broker.Server.Hosting;

/// <summary>The node's log: console format, levels, quiet categories, request logging; Akka's log through the same logger.</summary>
public static class LoggingSetup
{
    /// <summary>The category of ASP.NET Core's per-request lines ("Request starting …", "Request finished …").</summary>
    public const string RequestCategory = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>Console format and levels from <paramref name="settings"/> (Logging__LogLevel__… configuration still applies).</summary>
    public static ILoggingBuilder AddBrokerLogging(this ILoggingBuilder logging, LoggingSettings settings)
    {
        logging.ClearProviders();
        switch (settings.Format)
        {
            case LogFormat.Json:
                logging.AddJsonConsole(o =>
                {
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                    o.UseUtcTimestamp = true;
                });
                break;
            case LogFormat.Text:
                logging.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.TimestampFormat = "HH:mm:ss ";
                });
                break;
        }
        // Level rules, not filter functions: a level set at run time (brokerctl log set-level,
        // Logging/LogLevelSwitch) raises the rules more verbose than it and keeps the quieter ones.
        logging.SetMinimumLevel(settings.Level);
        var quiet = settings.Level > LogLevel.Warning ? settings.Level : LogLevel.Warning;
        foreach (var category in settings.Quiet) logging.AddFilter(category, quiet);
        if (settings.Requests) logging.AddFilter(RequestCategory, LogLevel.Information); // asked for: written at info whatever the level
        return logging;
    }

    /// <summary>Akka's log through the host's logger (<see cref="AkkaLogBridge"/>), at the node's level.</summary>
    public static AkkaConfigurationBuilder AddBrokerLogging(this AkkaConfigurationBuilder builder, LoggingSettings settings) =>
        builder.ConfigureLoggers(l =>
        {
            l.LogLevel = settings.Level switch
            {
                LogLevel.Trace or LogLevel.Debug => Akka.Event.LogLevel.DebugLevel,
                LogLevel.Information => Akka.Event.LogLevel.InfoLevel,
                LogLevel.Warning => Akka.Event.LogLevel.WarningLevel,
                _ => Akka.Event.LogLevel.ErrorLevel,
            };
            l.ClearLoggers();
            l.AddLogger<AkkaLogBridge>();
            // Remoting reports its end after the node's logger has stopped, when Akka writes to
            // stdout itself in its own format (a second timestamp): that info line is dropped.
            l.WithLogFilter(f => f.ExcludeMessageContaining("Remoting shut down"));
        });

    /// <summary>librdkafka's lines through the host's logger, rate limited as <paramref name="settings"/> says.</summary>
    public static KafkaClientLog KafkaClientLog(ILoggerFactory factory, LoggingSettings settings) =>
        new(factory.CreateLogger(Broker.Core.Log.KafkaClientLog.Category), settings.KafkaLogBurst, settings.KafkaLogWindow);
}
