using System.Text.Json.Nodes;
using Akka.Actor;
using Broker.Server.Logging;
using AkkaLogLevel = Akka.Event.LogLevel;

namespace Broker.Server.Admin;

/// <summary>
/// The node's log through the admin API: <c>GET /admin/log?lines=N</c> (recent lines from memory),
/// <c>GET /admin/log/stream?lines=N</c> (those, then new lines as Server-Sent Events),
/// <c>GET</c>/<c>PUT /admin/log/level</c> <c>{"level":"debug"}</c> (the minimum level at run time,
/// for Microsoft.Extensions.Logging and Akka alike; <c>"default"</c> restores the configuration).
/// </summary>
public static class LogAdminApi
{
    private const int DefaultLines = 50;

    public static RouteGroupBuilder MapLogAdmin(this RouteGroupBuilder admin)
    {
        admin.MapGet("/log", (int? lines, MemoryLog log) =>
        {
            var array = new JsonArray();
            foreach (var line in log.Recent(lines ?? DefaultLines)) array.Add(ToJson(line));
            return AdminApi.Json(new JsonObject { ["lines"] = array });
        });
        admin.MapGet("/log/stream", (HttpContext http, int? lines, MemoryLog log) =>
        {
            var (backlog, live, subscription) = log.Follow(lines ?? DefaultLines);
            return EventStream.Of(http, live, ToJson, subscription.Dispose, backlog);
        });
        admin.MapGet("/log/level", (LogLevelSwitch level, ActorSystem system) => AdminApi.Json(LevelView(level, system)));
        admin.MapPut("/log/level", async (HttpRequest req, LogLevelSwitch level, ActorSystem system) =>
        {
            string? text = null;
            try
            {
                text = (await JsonNode.ParseAsync(req.Body))?["level"]?.GetValue<string>();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
            {
                // answered below
            }
            switch (text?.Trim().ToLowerInvariant())
            {
                case "default" or "reset":
                    level.Reset();
                    system.EventStream.SetLogLevel(Akka.Event.Logging.LogLevelFor(system.Settings.LogLevel));
                    break;
                case { } name when Parse(name) is { } parsed:
                    level.Set(parsed);
                    system.EventStream.SetLogLevel(ToAkka(parsed));
                    break;
                default:
                    return AdminApi.Error(StatusCodes.Status400BadRequest,
                        $"unknown level '{text}': trace, debug, information, warning, error, critical, none, or default (the configured levels)");
            }
            return AdminApi.Json(LevelView(level, system));
        });
        return admin;
    }

    private static LogLevel? Parse(string name) => name switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "information" or "info" => LogLevel.Information,
        "warning" or "warn" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "critical" => LogLevel.Critical,
        "none" => LogLevel.None,
        _ => null,
    };

    /// <summary>Akka has no trace or critical level: the nearest one (and error for none).</summary>
    private static AkkaLogLevel ToAkka(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => AkkaLogLevel.DebugLevel,
        LogLevel.Information => AkkaLogLevel.InfoLevel,
        LogLevel.Warning => AkkaLogLevel.WarningLevel,
        _ => AkkaLogLevel.ErrorLevel,
    };

    private static JsonObject LevelView(LogLevelSwitch level, ActorSystem system) => new()
    {
        ["level"] = level.Override?.ToString() ?? "default",
        ["akka"] = system.EventStream.LogLevel.ToString(),
    };

    private static JsonNode ToJson(LogLine line)
    {
        var o = new JsonObject
        {
            ["seq"] = line.Seq,
            ["time"] = line.Time.UtcDateTime.ToString("O"),
            ["level"] = line.Level.ToString(),
            ["category"] = line.Category,
            ["message"] = line.Message,
        };
        if (line.Exception is not null) o["exception"] = line.Exception;
        return o;
    }
}
