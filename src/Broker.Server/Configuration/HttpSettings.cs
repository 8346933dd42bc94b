using System.Net;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>The public listener: WebSockets (/ws), health, metrics and the dashboard (HOCON <c>broker.http</c>).</summary>
public sealed record HttpSettings
{
    /// <summary>The host as configured (for messages).</summary>
    public required string Host { get; init; }

    /// <summary>The address Kestrel binds.</summary>
    public required IPAddress Address { get; init; }

    /// <summary>The port; 0 picks a free one.</summary>
    public required int Port { get; init; }

    /// <summary>Whether the dashboard (/, /api/cluster, /api/topics) is served.</summary>
    public required bool Dashboard { get; init; }

    /// <summary>Binds and validates <c>broker.http</c>.</summary>
    public static HttpSettings Bind(SettingsReader r) => new()
    {
        Host = r.String("broker.http.host").Trim(),
        Address = ListenAddress.Resolve(r, "broker.http.host"),
        Port = r.Port("broker.http.port"),
        Dashboard = r.Switch("broker.http.dashboard"),
    };
}
