using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Broker.Core.Metrics;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>/metrics (Prometheus text format, OpenTelemetry's exporter), /healthz and /readyz of a real node.</summary>
public sealed partial class MetricsAndHealthTests
{
    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?)\})? (?<value>[-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf|NaN))( [0-9]+)?$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""^# (HELP|TYPE) (?<name>[a-zA-Z_:][a-zA-Z0-9_:]*) .+$""")]
    private static partial Regex CommentLine();

    /// <summary>
    /// Parses the exposition strictly: every line is a HELP/TYPE comment or a sample of a declared
    /// metric. Keys are <c>name</c> or <c>name{labels}</c> (an empty label set is just the name).
    /// </summary>
    internal static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>();
        var typed = new HashSet<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#'))
            {
                var c = CommentLine().Match(line);
                Assert.True(c.Success, $"bad comment line: {line}");
                if (line.StartsWith("# TYPE")) typed.Add(c.Groups["name"].Value);
                continue;
            }
            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"bad sample line: {line}");
            var name = m.Groups["name"].Value;
            var family = Regex.Replace(name, "_(bucket|sum|count)$", "");
            Assert.True(typed.Contains(name) || typed.Contains(family), $"no TYPE for {name}");
            var labels = m.Groups["labels"].Value;
            var key = labels.Length > 0 ? $"{name}{{{labels}}}" : name;
            samples[key] = double.Parse(m.Groups["value"].Value.Replace("+Inf", "Infinity").Replace("Inf", "Infinity"), CultureInfo.InvariantCulture);
        }
        return samples;
    }

    internal static async Task<Dictionary<string, double>> ScrapeAsync(string httpAddress)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var response = await http.GetAsync(httpAddress + "/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType!.ToString());
        return Parse(await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Metrics_move_with_traffic_and_parse_as_prometheus_text()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var sub = await broker.ConnectAsync();
        await using var pub = await broker.ConnectAsync();
        await sub.SubscribeAsync("metrics.t");
        for (var i = 0; i < 5; i++) await pub.PublishAsync("metrics.t", new { n = i }, $"p{i}");
        for (var i = 0; i < 5; i++) await sub.ExpectAsync("message");
        await pub.SendTextAsync("this is not json");
        Assert.Equal("error", (string?)(await pub.ReceiveAsync())["type"]);

        using (var http = new HttpClient()) Assert.Equal("ok", await http.GetStringAsync(broker.HttpAddress + "/healthz"));

        var m = await ScrapeAsync(broker.HttpAddress);

        Assert.Equal(2, m["broker_connections"]);
        Assert.True(m["broker_connections_accepted_total"] >= 2);
        Assert.Equal(1, m["broker_subscriptions"]);
        Assert.Equal(1, m["broker_feeds"]);
        Assert.Equal(5, m["broker_messages_in_total"]);
        Assert.Equal(5, m["broker_messages_out_total"]);
        Assert.Equal(1, m["broker_bad_input_total{code=\"bad_request\"}"]);
        Assert.Equal(0, m["broker_slow_consumer_closes_total"]);
        Assert.Equal(5, m["broker_publish_ack_seconds_count"]);
        Assert.Equal(5, m["broker_publish_ack_seconds_bucket{le=\"+Inf\"}"]);
        // The broker's own bucket bounds (advice to the exporter), not OpenTelemetry's defaults.
        foreach (var le in BrokerMetrics.LatencyBuckets)
            Assert.True(m.ContainsKey($"broker_publish_ack_seconds_bucket{{le=\"{le.ToString(CultureInfo.InvariantCulture)}\"}}"), $"no bucket le={le}");
        Assert.True(m["broker_publish_ack_seconds_sum"] > 0);
        Assert.True(m["broker_delivery_latency_seconds_count"] >= 5);
        // The subscriber received all five: its feed has read the topic to the end.
        Assert.Equal(0, m["broker_kafka_feed_lag"]);
        Assert.Equal(1, m["broker_cluster_members"]);
        Assert.Equal(1, m["broker_cluster_members_all"]);
        Assert.Equal(0, m["broker_cluster_unreachable"]);
        Assert.True(m["broker_shards{type=\"topic\"}"] >= 1);
        Assert.True(m.ContainsKey("broker_shards{type=\"session\"}"));

        // The platform's meters come with them: ASP.NET Core, Kestrel and the .NET runtime.
        Assert.Contains(m.Keys, k => k.StartsWith("http_server_request_duration_seconds_count{", StringComparison.Ordinal) && k.Contains("http_route=\"/healthz\""));
        Assert.Contains(m.Keys, k => k.StartsWith("kestrel_active_connections{", StringComparison.Ordinal));
        Assert.Contains(m.Keys, k => k.StartsWith("dotnet_gc_collections_total{", StringComparison.Ordinal));
        Assert.True(m["dotnet_process_memory_working_set_bytes"] > 0);

        // Gauges are read at each scrape: both clients gone → 0 connections.
        await sub.DisposeAsync();
        await pub.DisposeAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((m = await ScrapeAsync(broker.HttpAddress))["broker_connections"] != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "broker_connections did not drop to 0");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Each_node_of_a_cluster_in_one_process_exports_its_own_numbers()
    {
        // The three nodes share a process (as in every cluster test): each node's exporter sees
        // its own host's meters only, not the sum of the process.
        await using var cluster = await TestCluster.StartAsync(3);
        await using var a1 = await cluster.Nodes[0].ConnectAsync();
        await using var a2 = await cluster.Nodes[0].ConnectAsync();
        await using var b1 = await cluster.Nodes[1].ConnectAsync();
        await a1.PublishAsync("metrics.nodes", new { n = 1 }, "p1");
        await a1.PublishAsync("metrics.nodes", new { n = 2 }, "p2");
        await b1.PublishAsync("metrics.nodes", new { n = 3 }, "p3");

        var m = await Task.WhenAll(cluster.Nodes.Select(n => ScrapeAsync(n.HttpAddress)));
        Assert.Equal([2.0, 1.0, 0.0], m.Select(x => x["broker_connections"]));
        Assert.Equal([2.0, 1.0, 0.0], m.Select(x => x["broker_messages_in_total"]));
        Assert.Equal([2.0, 1.0, 0.0], m.Select(x => x.GetValueOrDefault("broker_publish_ack_seconds_count")));
        Assert.All(m, x => Assert.Equal(3, x["broker_cluster_members"]));
        // Topic shards live on one node or another, never counted on all three.
        Assert.Equal(1, m.Sum(x => x["broker_shards{type=\"topic\"}"]));
    }

    [Fact(Timeout = 120_000)]
    public async Task With_an_otlp_endpoint_the_same_metrics_are_pushed_over_otlp()
    {
        // A stand-in collector: the first OTLP/HTTP export it receives.
        var received = new TaskCompletionSource<(string ContentType, byte[] Body)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var collectorBuilder = WebApplication.CreateSlimBuilder();
        collectorBuilder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using var collector = collectorBuilder.Build();
        collector.MapPost("/v1/metrics", async (HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            received.TrySetResult((request.ContentType ?? "", body.ToArray()));
            return Results.Ok();
        });
        await collector.StartAsync();
        var collectorUrl = collector.Urls.Single();

        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.metrics.otlp-endpoint"] = collectorUrl + "/v1/metrics",
            ["broker.metrics.otlp-protocol"] = "http/protobuf",
            ["broker.metrics.otlp-interval"] = "1s",
        });
        await using (var c = await broker.ConnectAsync()) await c.PublishAsync("metrics.otlp", new { n = 1 }, "p1");

        var (contentType, body) = await received.Task.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("application/x-protobuf", contentType);
        // Protobuf keeps strings as UTF-8: the broker's instrument names are in the export.
        var text = System.Text.Encoding.UTF8.GetString(body);
        Assert.Contains("broker.connections", text);
        Assert.Contains("broker.messages.in", text);
        // /metrics still answers next to it.
        Assert.Equal(1, (await ScrapeAsync(broker.HttpAddress))["broker_messages_in_total"]);
    }

    [Fact]
    public async Task Readyz_is_200_when_up_and_503_with_the_reason_when_kafka_is_down()
    {
        await using var broker = await TestBroker.StartAsync();
        using var http = new HttpClient();
        Assert.Equal("ok", await http.GetStringAsync(broker.HttpAddress + "/healthz"));

        var ready = await PollReadyz(http, broker, HttpStatusCode.OK);
        Assert.True((bool)ready["ready"]!);
        Assert.Equal("ok", (string?)ready["cluster"]);
        Assert.Equal("ok", (string?)ready["kafka"]);
        Assert.Equal("ok", (string?)ready["sessionStore"]);

        // The container healthcheck (the broker binary with --healthcheck): 0 while ready.
        Assert.Equal(0, (await HealthCheck(broker.HttpAddress + "/readyz")).Exit);

        var kafka = broker.App.Services.GetRequiredService<MockKafkaCluster>();
        kafka.SetBrokerDown();
        try
        {
            var down = await PollReadyz(http, broker, HttpStatusCode.ServiceUnavailable);
            Assert.False((bool)down["ready"]!);
            Assert.NotEqual("ok", (string?)down["kafka"]);
            Assert.Equal("ok", (string?)down["cluster"]);
            var (exit, output, _) = await HealthCheck(broker.HttpAddress + "/readyz");
            Assert.Equal(1, exit);
            Assert.Contains("503", output);
        }
        finally
        {
            kafka.SetBrokerUp();
        }
        await PollReadyz(http, broker, HttpStatusCode.OK);
        Assert.Equal(0, (await HealthCheck(broker.HttpAddress + "/readyz")).Exit);
        // Nothing listening: 1, with the reason.
        var (closedExit, _, closedError) = await HealthCheck($"http://127.0.0.1:{TestCluster.FreePort()}/readyz");
        Assert.Equal(1, closedExit);
        Assert.Contains("refused", closedError, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary><c>dotnet Broker.Server.dll --healthcheck url</c>, as docker-compose runs it.</summary>
    private static Task<(int Exit, string Out, string Err)> HealthCheck(string url) =>
        Command.RunAsync(BrokerProcess.DotnetHost(), [Path.Combine(AppContext.BaseDirectory, "Broker.Server.dll"), "--healthcheck", url],
            AppContext.BaseDirectory, TimeSpan.FromSeconds(60));

    [Fact]
    public async Task Readyz_is_503_naming_the_session_store_when_it_cannot_be_opened()
    {
        var missing = Path.Combine(Path.GetTempPath(), "broker-no-such-dir-" + Guid.NewGuid().ToString("N"), "s.db");
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.persistence.connection-string"] = $"Data Source={missing};Mode=ReadWrite",
        });
        using var http = new HttpClient();
        var body = await PollReadyz(http, broker, HttpStatusCode.ServiceUnavailable);
        Assert.StartsWith("session store (sqlite) unreachable", (string?)body["sessionStore"]);
        Assert.Equal("ok", (string?)body["cluster"]);
        Assert.Equal("ok", (string?)body["kafka"]);
    }

    [Fact]
    public async Task Logging_format_json_uses_the_json_console_formatter_and_an_unknown_format_is_refused()
    {
        var values = new Dictionary<string, string>
        {
            ["broker.kafka.embedded.enabled"] = "off",
            ["broker.kafka.bootstrap-servers"] = "127.0.0.1:1",
            ["broker.kafka.topic-creation"] = "none",
            ["broker.http.port"] = "0",
            ["broker.admin.port"] = "0",
            ["broker.logging.format"] = "json",
        };
        var app = Broker.Server.BrokerApp.Build(Broker.Server.Configuration.BrokerConfig.Load(values, _ => null));
        await using (app)
        {
            var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>>();
            Assert.Equal("json", options.CurrentValue.FormatterName);
        }
        values["broker.logging.format"] = "xml";
        var refused = Assert.Throws<Broker.Core.Settings.SettingsException>(() => Broker.Server.BrokerApp.Build(Broker.Server.Configuration.BrokerConfig.Load(values, _ => null)));
        Assert.Equal("broker.logging.format", refused.Key);
    }

    private static async Task<JsonNode> PollReadyz(HttpClient http, TestBroker broker, HttpStatusCode expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var r = await http.GetAsync(broker.HttpAddress + "/readyz");
            var body = await r.Content.ReadAsStringAsync();
            if (r.StatusCode == expected) return JsonNode.Parse(body)!;
            Assert.True(DateTime.UtcNow < deadline, $"/readyz stayed {(int)r.StatusCode}: {body}");
            await Task.Delay(250);
        }
    }
}
