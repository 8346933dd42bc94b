using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using System.Diagnostics.Metrics;
using Broker.Core.Connections;
using Broker.Core.Log;
using Broker.Core.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Broker.Server.Metrics;

/// <summary>
/// Metrics through the platform: the broker's Meter (<see cref="BrokerMetrics"/>, gauges in
/// <see cref="NodeGauges"/>), ASP.NET Core's and Kestrel's meters and the .NET runtime's, collected
/// by OpenTelemetry and served in the Prometheus text format on <c>/metrics</c>; optionally pushed
/// with OTLP as well (<c>broker.metrics.otlp-endpoint</c>).
/// </summary>
public static class MetricsSetup
{
    /// <summary>Meters created by this host's <see cref="IMeterFactory"/>: enabled for this host only.</summary>
    private static readonly string[] HostMeters = [BrokerMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel"];

    /// <summary>The process's own meter (GC, memory, thread pool, exceptions): one per process.</summary>
    private const string RuntimeMeter = "System.Runtime";

    public static WebApplicationBuilder AddBrokerMetrics(this WebApplicationBuilder builder, MetricsSettings settings)
    {
        var gaugeTimeout = settings.GaugeTimeout;
        builder.Services.AddSingleton(sp => new BrokerMetrics(sp.GetRequiredService<IMeterFactory>()));
        builder.Services.AddSingleton(sp => new NodeGauges(sp.GetRequiredService<BrokerMetrics>(), sp.GetRequiredService<ConnectionRegistry>(),
            sp.GetRequiredService<FeedHub>(), sp, gaugeTimeout));

        // Enabled through Microsoft.Extensions.Diagnostics rather than MeterProviderBuilder.AddMeter:
        // a Local scope selects the meters of this host's container only, so several nodes in one
        // process (the integration tests) each export their own numbers, not the sum of all.
        foreach (var meter in HostMeters) builder.Metrics.EnableMetrics(meter, scopes: MeterScope.Local);
        builder.Metrics.EnableMetrics(RuntimeMeter, scopes: MeterScope.Global);

        var otlpFromEnvironment = Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 };
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("broker"))
            .WithMetrics(m =>
            {
                m.SetExemplarFilter(ExemplarFilterType.AlwaysOff);
                m.AddPrometheusExporter(o =>
                {
                    // Fresh numbers on every scrape (Prometheus scrapes every few seconds at most).
                    o.ScrapeResponseCacheDurationMilliseconds = 0;
                    // No otel_scope_* labels on every sample: the metric names say where they come from.
                    o.ScopeInfoEnabled = false;
                });
                if (settings.OtlpEndpoint is { } endpoint)
                {
                    m.AddOtlpExporter((exporter, reader) =>
                    {
                        exporter.Endpoint = endpoint;
                        exporter.Protocol = settings.OtlpProtocol;
                        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)settings.OtlpInterval.TotalMilliseconds;
                    });
                }
                else if (otlpFromEnvironment)
                {
                    // The standard OTEL_EXPORTER_OTLP_* variables configure the exporter themselves.
                    m.AddOtlpExporter();
                }
            });
        return builder;
    }

    /// <summary><c>/metrics</c>: gauges refreshed, then OpenTelemetry's Prometheus exporter answers.</summary>
    public static WebApplication MapBrokerMetrics(this WebApplication app)
    {
        var gauges = app.Services.GetRequiredService<NodeGauges>();
        app.UseOpenTelemetryPrometheusScrapingEndpoint(
            meterProvider: null,
            predicate: ctx => ctx.Request.Path == "/metrics",
            path: null,
            configureBranchedPipeline: branch => branch.Use(async (ctx, next) =>
            {
                await gauges.RefreshAsync();
                await next(ctx);
            }),
            optionsName: null);
        return app;
    }
}
