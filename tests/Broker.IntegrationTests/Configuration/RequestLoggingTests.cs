using Broker.IntegrationTests.Infrastructure;
using Broker.Server.Hosting;

namespace Broker.IntegrationTests.Configuration;

/// <summary>ASP.NET Core's line per request: off by default (probes and dashboard polls add nothing), on by a setting.</summary>
public sealed class RequestLoggingTests
{
    [Theory]
    [InlineData("off", false)]
    [InlineData("on", true)]
    public async Task Requests_are_logged_only_when_broker_logging_requests_is_on(string requests, bool logged)
    {
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string> { ["broker.logging.requests"] = requests });
        var log = LogCapture.Attach(broker);
        using var http = new HttpClient();
        (await http.GetAsync(broker.HttpAddress + "/healthz")).EnsureSuccessStatusCode();
        // The line is written when the response completes; the client may see the response first.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (logged && log.Count(LoggingSetup.RequestCategory, "/healthz") < 2 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(logged ? 2 : 0, log.Count(LoggingSetup.RequestCategory, "/healthz")); // "Request starting" and "Request finished"
    }
}
