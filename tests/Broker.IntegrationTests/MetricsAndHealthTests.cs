using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>/metrics (Prometheus text format), /healthz and /readyz of a real node.</summary>
public sealed partial class MetricsAndHealthTests
{
    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)\})? (?<value>[-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf|NaN))$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""^# (HELP|TYPE) (?<name>[a-zA-Z_:][a-zA-Z0-9_:]*) .+$""")]
    private static partial Regex CommentLine();

    /// <summary>Parses the exposition strictly: every line is a HELP/TYPE comment or a sample of a declared metric.</summary>
    private static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>();
        var typed = new HashSet<string>();
        var helped = new HashSet<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#'))
            {
                var c = CommentLine().Match(line);
                Assert.True(c.Success, $"bad comment line: {line}");
                (line.StartsWith("# TYPE") ? typed : helped).Add(c.Groups["name"].Value);
                continue;
            }
            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"bad sample line: {line}");
            var name = m.Groups["name"].Value;
            var family = Regex.Replace(name, "_(bucket|sum|count)$", "");
            Assert.True(typed.Contains(name) || typed.Contains(family), $"no TYPE for {name}");
            Assert.True(helped.Contains(name) || helped.Contains(family), $"no HELP for {name}");
            var key = m.Groups["labels"].Success ? $"{name}{{{m.Groups["labels"].Value}}}" : name;
            samples[key] = double.Parse(m.Groups["value"].Value.Replace("+Inf", "Infinity").Replace("Inf", "Infinity"), CultureInfo.InvariantCulture);
        }
        return samples;
    }

    [Fact]
    public async Task Metrics_move_with_traffic_and_parse_as_prometheus_text()
    {
        await using var broker = await TestBroker.StartAsync();
        using var http = new HttpClient();
        await using var sub = await broker.ConnectAsync();
        await using var pub = await broker.ConnectAsync();
        await sub.SubscribeAsync("metrics.t");
        for (var i = 0; i < 5; i++) await pub.PublishAsync("metrics.t", new { n = i }, $"p{i}");
        for (var i = 0; i < 5; i++) await sub.ExpectAsync("message");
        await pub.SendTextAsync("this is not json");
        Assert.Equal("error", (string?)(await pub.ReceiveAsync())["type"]);

        var response = await http.GetAsync(broker.HttpAddress + "/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType!.ToString());
        var m = Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(2, m["broker_connections"]);
        Assert.True(m["broker_connections_accepted_total"] >= 2);
        Assert.Equal(1, m["broker_subscriptions"]);
        Assert.Equal(5, m["broker_messages_in_total"]);
        Assert.Equal(5, m["broker_messages_out_total"]);
        Assert.Equal(1, m["broker_bad_input_total{code=\"bad_request\"}"]);
        Assert.Equal(0, m["broker_slow_consumer_closes_total"]);
        Assert.Equal(5, m["broker_publish_ack_seconds_count"]);
        Assert.Equal(5, m["broker_publish_ack_seconds_bucket{le=\"+Inf\"}"]);
        Assert.True(m["broker_delivery_latency_seconds_count"] >= 5);
        Assert.True(m["broker_kafka_feed_lag"] >= 0);
        Assert.Equal(1, m["broker_cluster_members"]);
        Assert.True(m["broker_shards{type=\"topic\"}"] >= 1);
        Assert.True(m.ContainsKey("broker_shards{type=\"session\"}"));
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

        var kafka = broker.App.Services.GetRequiredService<MockKafkaCluster>();
        kafka.SetBrokerDown();
        try
        {
            var down = await PollReadyz(http, broker, HttpStatusCode.ServiceUnavailable);
            Assert.False((bool)down["ready"]!);
            Assert.NotEqual("ok", (string?)down["kafka"]);
            Assert.Equal("ok", (string?)down["cluster"]);
        }
        finally
        {
            kafka.SetBrokerUp();
        }
        await PollReadyz(http, broker, HttpStatusCode.OK);
    }

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
