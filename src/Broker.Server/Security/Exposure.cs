using System.Net;
using Broker.Core.Security;
using Broker.Server.Configuration;

namespace Broker.Server.Security;

/// <summary>
/// What a node exposes, decided at start: whether /ws and the admin API listen on loopback only.
/// A node refuses to start (one line, exit code 2, before anything listens) when it would be open
/// to the network without protection: anonymous /ws on a non-loopback address unless
/// <c>broker.auth.allow-anonymous-public</c>, or the admin API on a non-loopback address without
/// <c>broker.admin.token</c>.
/// </summary>
public sealed record Exposure(bool PublicOnLoopback, bool AdminOnLoopback)
{
    /// <summary>The exposure of a node; throws <see cref="StartupException"/> for an unprotected one.</summary>
    public static Exposure Check(HttpSettings http, AdminSettings admin, SecuritySettings security)
    {
        var exposure = new Exposure(IsLoopback(http.Host), IsLoopback(admin.Host));
        if (!exposure.PublicOnLoopback && !security.Auth.Enabled && !security.Auth.AllowAnonymousPublic)
            throw new StartupException(
                $"broker.http.host = '{http.Host}' is not a loopback address and broker.auth.mode = off: anyone who reaches /ws could read and write every topic. " +
                "Set broker.auth.mode = required (BROKER_AUTH_MODE) with signing keys, or broker.auth.allow-anonymous-public = on (BROKER_AUTH_ALLOW_ANONYMOUS_PUBLIC) to accept that");
        if (!exposure.AdminOnLoopback && admin.Token.Length == 0)
            throw new StartupException(
                $"broker.admin.host = '{admin.Host}' is not a loopback address: the admin API needs broker.admin.token (BROKER_ADMIN_TOKEN) or broker.admin.token-file (BROKER_ADMIN_TOKEN_FILE)");
        return exposure;
    }

    /// <summary>Whether every address <paramref name="host"/> stands for is a loopback address ("", "*", 0.0.0.0 are not).</summary>
    public static bool IsLoopback(string host)
    {
        host = host.Trim().Trim('[', ']');
        if (host is "" or "*" or "+") return false;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        if (IPAddress.TryParse(host, out var ip)) return IPAddress.IsLoopback(ip);
        try
        {
            var addresses = Dns.GetHostAddresses(host);
            return addresses.Length > 0 && addresses.All(IPAddress.IsLoopback);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
