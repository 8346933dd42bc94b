using System.Net;
using System.Net.Sockets;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>The address a listener binds, from a host setting: an IP address, a host name, or all interfaces.</summary>
public static class ListenAddress
{
    /// <summary>
    /// Resolves the host setting <paramref name="key"/>: empty, <c>*</c>, <c>+</c> or <c>0.0.0.0</c> =
    /// every interface, <c>localhost</c> = loopback, else an IP address or a name that resolves.
    /// </summary>
    public static IPAddress Resolve(SettingsReader r, string key)
    {
        var host = r.String(key).Trim();
        switch (host)
        {
            case "" or "*" or "+" or "0.0.0.0":
                return IPAddress.Any;
            case "localhost":
                return IPAddress.Loopback;
        }
        if (IPAddress.TryParse(host, out var ip)) return ip;
        try
        {
            var addresses = Dns.GetHostAddresses(host);
            return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw r.Invalid(key, host, "an IP address or a host name that resolves (0.0.0.0: every interface)");
        }
        catch (SocketException)
        {
            throw r.Invalid(key, host, "an IP address or a host name that resolves (0.0.0.0: every interface)");
        }
    }
}
