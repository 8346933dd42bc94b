namespace Broker.Server.Hosting;

/// <summary>
/// <c>dotnet Broker.Server.dll --healthcheck [url]</c>: asks a running node's <c>/readyz</c> and exits
/// 0 when it answers 200, else 1 — a container healthcheck for an image that has no curl. The URL
/// defaults to this container's own node (<c>http://127.0.0.1:$BROKER_HTTP_PORT/readyz</c>, port 8080).
/// Nothing else of the broker is loaded.
/// </summary>
public static class HealthCheckCommand
{
    public const string Flag = "--healthcheck";

    /// <summary>Longest wait for the answer; the container runtime's own timeout should be longer.</summary>
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    public static bool IsRequested(string[] args) => args.Length > 0 && args[0] == Flag;

    public static async Task<int> RunAsync(string[] args)
    {
        var port = Environment.GetEnvironmentVariable("BROKER_HTTP_PORT") is { Length: > 0 } p ? p : "8080";
        var url = args.Length > 1 ? args[1] : $"http://127.0.0.1:{port}/readyz";
        using var http = new HttpClient { Timeout = RequestTimeout };
        try
        {
            using var response = await http.GetAsync(url);
            var body = await response.Content.ReadAsStringAsync();
            Console.WriteLine($"{url}: {(int)response.StatusCode} {body}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException or UriFormatException)
        {
            Console.Error.WriteLine($"{url}: {e.Message}");
            return 1;
        }
    }
}
