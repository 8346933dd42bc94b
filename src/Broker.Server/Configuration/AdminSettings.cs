using System.Net;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>The admin API listener and its timeouts (HOCON <c>broker.admin</c>).</summary>
public sealed record AdminSettings
{
    /// <summary>The host as configured (for messages).</summary>
    public required string Host { get; init; }

    /// <summary>The address Kestrel binds for the admin API.</summary>
    public required IPAddress Address { get; init; }

    /// <summary>The admin port; 0 picks a free one.</summary>
    public required int Port { get; init; }

    /// <summary>When not empty, every admin request needs <c>Authorization: Bearer &lt;token&gt;</c>.</summary>
    public required string Token { get; init; }

    /// <summary>How long the admin API waits for another node (status, sharding statistics, topic settings).</summary>
    public required TimeSpan AskTimeout { get; init; }

    /// <summary>How long a drained node gives its connections to close with 1001.</summary>
    public required TimeSpan DrainTimeout { get; init; }

    /// <summary>Binds and validates <c>broker.admin</c>.</summary>
    public static AdminSettings Bind(SettingsReader r) => new()
    {
        Host = r.String("broker.admin.host").Trim(),
        Address = ListenAddress.Resolve(r, "broker.admin.host"),
        Port = r.Port("broker.admin.port"),
        Token = r.String("broker.admin.token"),
        AskTimeout = r.Duration("broker.admin.ask-timeout"),
        DrainTimeout = r.Duration("broker.admin.drain-timeout", TimeSpan.Zero),
    };
}
