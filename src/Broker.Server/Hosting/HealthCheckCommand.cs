using System.Net;
using System.Net.Sockets;
using Broker.Core.Settings;
using Broker.Server.Configuration;

namespace Broker.Server.Hosting;

/// <summary>
/// <c>dotnet Broker.Server.dll --healthcheck [url]</c>: asks a running node's <c>/readyz</c> and exits
/// 0 when it answers 200, else 1 — a container healthcheck for an image that has no curl. Without a
/// URL it asks the node this configuration describes: the configuration is loaded as the broker
/// loads it (<see cref="BrokerConfig.Load"/>: the defaults, <c>BROKER_CONFIG</c>, the environment)
/// and the URL is built from <c>broker.http</c> (host, port, TLS). The wait for the answer is
/// <c>broker.health.healthcheck-timeout</c>. Nothing else of the broker is loaded or started.
/// </summary>
public static class HealthCheckCommand
{
    public const string Flag = "--healthcheck";

    /// <summary>The exit code when the node is not ready, does not answer or cannot be named (Docker reserves 2).</summary>
    public const int Unhealthy = 1;

    public static bool IsRequested(string[] args) => args.Length > 0 && args[0] == Flag;

    public static async Task<int> RunAsync(string[] args, Func<string, string?> environment)
    {
        string url;
        TimeSpan timeout;
        bool ownNode;
        LoadedConfig? config = null;
        try
        {
            config = BrokerConfig.Load(environment: environment);
            var r = new SettingsReader(config.Config);
            timeout = HealthSettings.Bind(r).HealthcheckTimeout;
            ownNode = args.Length < 2;
            url = ownNode ? ReadyzUrl(r) : args[1];
        }
        catch (SettingsException e)
        {
            Console.Error.WriteLine($"broker: {config?.Describe(e) ?? e.Message}");
            return Unhealthy;
        }
        catch (StartupException e)
        {
            Console.Error.WriteLine($"broker: {e.Message}");
            return Unhealthy;
        }

        using var handler = new SocketsHttpHandler();
        // The node's own listener, asked by address: its certificate names the public host, not this
        // address, and nothing secret is sent. A URL given on the command line is checked as usual.
        if (ownNode) handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        using var http = new HttpClient(handler) { Timeout = timeout };
        try
        {
            using var response = await http.GetAsync(url);
            var body = await response.Content.ReadAsStringAsync();
            Console.WriteLine($"{url}: {(int)response.StatusCode} {body}");
            return response.IsSuccessStatusCode ? 0 : Unhealthy;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException or UriFormatException)
        {
            Console.Error.WriteLine($"{url}: {e.Message}");
            return Unhealthy;
        }
    }

    /// <summary>
    /// <c>/readyz</c> of the node <c>broker.http</c> describes: the address it binds (loopback when it
    /// binds every interface), its port, https with TLS. A port of 0 (a free one, known only to the
    /// node) cannot be asked: that is an invalid value for this command.
    /// </summary>
    internal static string ReadyzUrl(SettingsReader r)
    {
        var settings = HttpSettings.Bind(r);
        if (settings.Port == 0)
            throw r.Invalid("broker.http.port", "0",
                "a fixed port for --healthcheck without a URL (0 is a free port only the node knows): set it, or give the URL (--healthcheck http://host:port/readyz)");
        var address = settings.Address switch
        {
            var a when a.Equals(IPAddress.Any) => IPAddress.Loopback,
            var a when a.Equals(IPAddress.IPv6Any) => IPAddress.IPv6Loopback,
            var a => a,
        };
        var host = address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        return $"{(settings.Tls.Enabled ? "https" : "http")}://{host}:{settings.Port}/readyz";
    }
}
