using System.Net;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>The admin API listener, its protection and its timeouts (HOCON <c>broker.admin</c>).</summary>
public sealed record AdminSettings
{
    /// <summary>The host as configured (for messages).</summary>
    public required string Host { get; init; }

    /// <summary>The address Kestrel binds for the admin API.</summary>
    public required IPAddress Address { get; init; }

    /// <summary>The admin port; 0 picks a free one.</summary>
    public required int Port { get; init; }

    /// <summary>
    /// When not empty, every admin request needs <c>Authorization: Bearer &lt;token&gt;</c>:
    /// <c>broker.admin.token</c>, or the contents of <c>broker.admin.token-file</c> (a Docker or
    /// Kubernetes secret) when the token is empty.
    /// </summary>
    public required string Token { get; init; }

    /// <summary>Host header values the admin API answers besides IP addresses, localhost, this machine's and the cluster's host name.</summary>
    public required IReadOnlyList<string> AllowedHosts { get; init; }

    /// <summary>How long the admin API waits for another node (status, sharding statistics, topic settings).</summary>
    public required TimeSpan AskTimeout { get; init; }

    /// <summary>How long a drained node gives its connections to close with 1001.</summary>
    public required TimeSpan DrainTimeout { get; init; }

    /// <summary>Binds and validates <c>broker.admin</c>; reads the token file when the token is empty and a file is set.</summary>
    public static AdminSettings Bind(SettingsReader r)
    {
        var token = r.String("broker.admin.token");
        const string fileKey = "broker.admin.token-file";
        var file = r.String(fileKey).Trim();
        var fromFile = token.Length == 0 && file.Length > 0 ? r.ReadSecret(fileKey, file, "the admin API's token") : null;
        return new AdminSettings
        {
            Host = r.String("broker.admin.host").Trim(),
            Address = ListenAddress.Resolve(r, "broker.admin.host"),
            Port = r.Port("broker.admin.port"),
            Token = token.Length > 0 ? token : fromFile ?? "",
            AllowedHosts = r.StringList("broker.admin.allowed-hosts"),
            AskTimeout = r.Duration("broker.admin.ask-timeout"),
            DrainTimeout = r.Duration("broker.admin.drain-timeout", TimeSpan.Zero),
        };
    }
}
