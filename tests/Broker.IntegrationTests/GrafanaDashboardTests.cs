using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>
/// The Grafana dashboard of the compose deployment (deploy/grafana/dashboards/broker.json): it parses,
/// it has the panels an operator needs, and every metric its queries name is one a real broker exports.
/// </summary>
public sealed partial class GrafanaDashboardTests
{
    /// <summary>Metric names in PromQL: the exporters' prefixes (broker, ASP.NET Core, Kestrel, .NET runtime).</summary>
    [GeneratedRegex(@"\b(?:broker|http_server|kestrel|dotnet)_[a-z0-9_]+\b")]
    private static partial Regex MetricName();

    private static JsonNode Dashboard() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Repository.Root(), "deploy", "grafana", "dashboards", "broker.json")))!;

    /// <summary>Every query target of the dashboard's panels (rows included).</summary>
    internal static IEnumerable<JsonNode> Targets(JsonNode dashboard) =>
        Panels(dashboard["panels"]).SelectMany(p => p["targets"]?.AsArray().Select(t => t!) ?? []);

    private static IEnumerable<JsonNode> Panels(JsonNode? panels) =>
        panels?.AsArray().SelectMany(p => (IEnumerable<JsonNode>)[p!, .. Panels(p!["panels"])]) ?? [];

    /// <summary>The queries: each panel target's expression and the templating variables' queries.</summary>
    private static IEnumerable<string> Queries(JsonNode dashboard) =>
        Targets(dashboard).Select(t => (string)t["expr"]!)
            .Concat(dashboard["templating"]!["list"]!.AsArray().Select(v => (string)v!["definition"]!));

    [Fact]
    public void The_dashboard_parses_and_has_a_panel_for_each_thing_an_operator_watches()
    {
        var dashboard = Dashboard();
        Assert.Equal("broker", (string?)dashboard["uid"]);
        var panels = Panels(dashboard["panels"]).Where(p => (string?)p["type"] != "row").ToList();
        Assert.All(panels, p => Assert.NotEmpty(p["targets"]!.AsArray()));
        Assert.Equal(panels.Count, panels.Select(p => (int)p["id"]!).Distinct().Count());
        // Every query names at least one metric the exporter check below covers.
        Assert.All(Queries(dashboard), q => Assert.Matches(MetricName(), q));

        var names = Queries(dashboard).SelectMany(q => MetricName().Matches(q).Select(m => m.Value)).ToHashSet();
        foreach (var needed in new[]
                 {
                     "broker_connections", "broker_subscriptions", "broker_messages_in_total", "broker_messages_out_total",
                     "broker_publish_ack_seconds_bucket", "broker_delivery_latency_seconds_bucket", "broker_kafka_feed_lag",
                     "broker_slow_consumer_closes_total", "broker_cluster_members", "broker_shards",
                 })
            Assert.Contains(needed, names);
        // Latency panels are quantiles computed from the histograms' buckets.
        Assert.Contains(Queries(dashboard), q => q.StartsWith("histogram_quantile(0.99, sum by (le) (rate(broker_publish_ack_seconds_bucket", StringComparison.Ordinal));
        Assert.Contains(Queries(dashboard), q => q.StartsWith("histogram_quantile(0.99, sum by (le) (rate(broker_delivery_latency_seconds_bucket", StringComparison.Ordinal));
    }

    [Fact(Timeout = 120_000)]
    public async Task Every_metric_the_dashboard_queries_is_exported_by_a_real_broker()
    {
        await using var broker = await TestBroker.StartAsync();
        // Traffic that makes every series exist: a subscriber and a publisher (both latency
        // histograms), a bad frame (bad input by code), an HTTP request (ASP.NET Core's histogram).
        await using (var sub = await broker.ConnectAsync())
        await using (var pub = await broker.ConnectAsync())
        {
            await sub.SubscribeAsync("dashboard.t");
            await pub.PublishAsync("dashboard.t", new { n = 1 }, "p1");
            await sub.ExpectAsync("message");
            await pub.SendTextAsync("not json");
            Assert.Equal("error", (string?)(await pub.ReceiveAsync())["type"]);
            using var http = new HttpClient();
            await http.GetStringAsync(broker.HttpAddress + "/healthz");

            var exported = (await MetricsAndHealthTests.ScrapeAsync(broker.HttpAddress)).Keys
                .Select(k => k.Split('{')[0]).ToHashSet(StringComparer.Ordinal);
            var queried = Queries(Dashboard()).SelectMany(q => MetricName().Matches(q).Select(m => m.Value)).ToHashSet(StringComparer.Ordinal);
            var missing = queried.Where(n => !exported.Contains(n)).Order(StringComparer.Ordinal).ToList();
            Assert.True(missing.Count == 0, $"the dashboard queries metrics the broker does not export: {string.Join(", ", missing)}");
        }
    }
}
