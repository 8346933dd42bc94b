using Broker.Server;
using Broker.Server.Configuration;
using Microsoft.AspNetCore.Builder;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// A real broker node for a test: Kestrel on a free loopback port, the embedded Kafka-protocol
/// log on another free port, a cluster of one. Overrides are HOCON keys.
/// </summary>
public sealed class TestBroker : IAsyncDisposable
{
    private TestBroker(WebApplication app)
    {
        App = app;
        HttpAddress = app.HttpAddress();
        WsUri = new Uri(HttpAddress.Replace("https://", "wss://").Replace("http://", "ws://") + "/ws");
    }

    public WebApplication App { get; }
    public string HttpAddress { get; }
    public string AdminAddress => App.AdminAddress();
    public string ClusterAddress => Akka.Cluster.Cluster.Get(App.Services.GetRequiredService<Akka.Actor.ActorSystem>()).SelfAddress.ToString();
    public Uri WsUri { get; }

    public string KafkaBootstrap => App.Services.GetRequiredService<Broker.Core.Settings.KafkaSettings>().BootstrapServers;

    /// <param name="hocon">Extra HOCON merged over the configuration (for values that are not strings, e.g. lists of objects).</param>
    /// <param name="log">Captures the node's log from before it starts (what it logs while starting, e.g. a failed cluster join, included).</param>
    public static async Task<TestBroker> StartAsync(IReadOnlyDictionary<string, string>? overrides = null, string? hocon = null, LogCapture? log = null)
    {
        var values = new Dictionary<string, string>
        {
            ["broker.http.port"] = "0",
            ["broker.admin.port"] = "0",
            ["broker.kafka.embedded.port"] = "0",
            ["broker.cluster.port"] = "0",
            ["broker.shutdown-deadline"] = "5s",
            ["broker.logging.level"] = "warning",
        };
        if (overrides is not null) foreach (var (k, v) in overrides) values[k] = v;
        var config = BrokerConfig.Load(values, _ => null);
        if (hocon is not null) config = config.With(hocon);
        var app = BrokerApp.Build(config, []); // the level is broker.logging.level (warning above, unless a test asks for more)
        log?.AttachTo(app);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return new TestBroker(app);
    }

    /// <summary>
    /// broker.limits' publish rates off: a test of something else that publishes faster than the
    /// defaults allow (5,000 publishes and 16 MiB per second per connection) would get rate_limited
    /// on a fast machine.
    /// </summary>
    public static IReadOnlyDictionary<string, string> NoPublishRateLimits { get; } = new Dictionary<string, string>
    {
        ["broker.limits.publishes-per-second"] = "0",
        ["broker.limits.publish-bytes-per-second"] = "0",
        ["broker.limits.subject-publishes-per-second"] = "0",
        ["broker.limits.subject-publish-bytes-per-second"] = "0",
    };

    public Task<WsClient> ConnectAsync(string query = "", Action<System.Net.WebSockets.ClientWebSocketOptions>? configure = null) =>
        WsClient.ConnectAsync(new Uri(WsUri + query), configure: configure);

    /// <summary>Connects with <c>Authorization: Bearer <paramref name="token"/></c> on the upgrade.</summary>
    public Task<WsClient> ConnectWithTokenAsync(string token, string query = "") =>
        WsClient.ConnectAsync(new Uri(WsUri + query), configure: o => o.SetRequestHeader("Authorization", "Bearer " + token));

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await App.DisposeAsync();
    }
}

/// <summary>One broker with the default settings shared by the tests of a class (tests use distinct topic names).</summary>
public sealed class BrokerFixture() : ConfiguredBrokerFixture(new Dictionary<string, string>());

/// <summary>One broker without publish rate limits, for tests that publish as fast as they can (thousands of pipelined publishes).</summary>
public sealed class UnlimitedBrokerFixture() : ConfiguredBrokerFixture(TestBroker.NoPublishRateLimits);

/// <summary>One broker with its own settings (HOCON keys, and HOCON text for lists of objects), shared by the tests of a class.</summary>
public abstract class ConfiguredBrokerFixture(IReadOnlyDictionary<string, string> overrides, string? hocon = null) : IAsyncLifetime
{
    public TestBroker Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await TestBroker.StartAsync(overrides, hocon);

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}
