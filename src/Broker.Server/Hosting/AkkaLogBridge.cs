using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;
using Akka.Hosting.Logging;
using MelLogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace Broker.Server.Hosting;

/// <summary>
/// Akka's logger: writes Akka's log events through the host's <see cref="ILoggerFactory"/>, one
/// entry per event with the event's own text only (the console formatter adds the one timestamp
/// and the level; Akka.Hosting's logger wrote Akka's own prefix with a second timestamp, thread and
/// source). The category is the class that logged (<c>Akka.Cluster.Sharding.ShardRegion</c>,
/// <c>Broker.Core.Topics.TopicActor</c>, …) or, for Akka's named sources, its module
/// (<c>Akka.Cluster.Cluster</c>, <c>Akka.Remote</c>), so log filters work per Akka module; the
/// event's source (actor path) travels as <c>LogSource</c>.
/// </summary>
public sealed class AkkaLogBridge : ActorBase, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    private readonly ILoggerFactory _factory;
    private readonly Dictionary<string, ILogger> _loggers = new(StringComparer.Ordinal);

    public AkkaLogBridge()
    {
        var setup = Context.System.Settings.Setup.Get<LoggerFactorySetup>();
        _factory = setup.HasValue ? setup.Value.LoggerFactory : throw new InvalidOperationException("no ILoggerFactory for Akka's log (LoggerFactorySetup)");
    }

    protected override bool Receive(object message)
    {
        switch (message)
        {
            case InitializeLogger:
                Sender.Tell(new LoggerInitialized());
                return true;
            case LogEvent e:
                Write(e);
                return true;
            default:
                return false;
        }
    }

    private void Write(LogEvent e)
    {
        var category = CategoryOf(e);
        if (!_loggers.TryGetValue(category, out var logger)) _loggers[category] = logger = _factory.CreateLogger(category);
        var level = LevelOf(e.LogLevel());
        if (!logger.IsEnabled(level)) return;
        logger.Log(level, default, new Entry(Text(e.Message), e.LogSource), e.Cause, static (entry, _) => entry.Message);
    }

    /// <summary>
    /// The class that logged; for events logged under a name (Akka's "Cluster", "remoting",
    /// "CoordinatedShutdown" sources have no class of their own) the module of that name.
    /// </summary>
    private static string CategoryOf(LogEvent e)
    {
        if (e.LogClass is { } type && type != typeof(DummyClassForStringSources)) return type.FullName ?? type.Name;
        var source = e.LogSource ?? "";
        var name = source[..Math.Max(0, source.IndexOfAny([' ', '(']) is var end and >= 0 ? end : source.Length)];
        return name switch
        {
            "Cluster" => "Akka.Cluster.Cluster",
            "CoordinatedShutdown" => "Akka.Actor.CoordinatedShutdown",
            _ when name.StartsWith("remoting", StringComparison.Ordinal) => "Akka.Remote",
            _ when name.Length == 0 || name.Contains('/') => "Akka",
            _ when name.Contains('.') => name, // already a category (the node's own lines sent through Akka's log)
            _ => "Akka." + name,
        };
    }

    private static string Text(object? message)
    {
        try
        {
            return message?.ToString() ?? "";
        }
        catch (Exception x) when (x is FormatException or InvalidOperationException)
        {
            return $"(unformattable Akka log message: {x.Message})";
        }
    }

    private static MelLogLevel LevelOf(Akka.Event.LogLevel level) => level switch
    {
        Akka.Event.LogLevel.DebugLevel => MelLogLevel.Debug,
        Akka.Event.LogLevel.InfoLevel => MelLogLevel.Information,
        Akka.Event.LogLevel.WarningLevel => MelLogLevel.Warning,
        _ => MelLogLevel.Error,
    };

    /// <summary>The logged state: the message and its source (structured properties for the JSON format).</summary>
    private readonly record struct Entry(string Message, string? LogSource) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public int Count => 3;

        public KeyValuePair<string, object?> this[int index] => index switch
        {
            0 => new("Message", Message),
            1 => new("LogSource", LogSource),
            2 => new("{OriginalFormat}", "{Message}"),
            _ => throw new ArgumentOutOfRangeException(nameof(index)),
        };

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            for (var i = 0; i < Count; i++) yield return this[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => Message;
    }
}
