using Broker.Core.Settings;
using OpenTelemetry.Exporter;

namespace Broker.Server.Metrics;

/// <summary>/metrics and the optional OTLP export (HOCON <c>broker.metrics</c>).</summary>
public sealed record MetricsSettings
{
    /// <summary>How long a scrape waits for a gauge that needs the feed thread or a shard region (one that does not answer is left out).</summary>
    public required TimeSpan GaugeTimeout { get; init; }

    /// <summary>The OTLP collector metrics are pushed to; null: no OTLP export (unless OTEL_EXPORTER_OTLP_ENDPOINT is set).</summary>
    public required Uri? OtlpEndpoint { get; init; }

    /// <summary>The OTLP transport.</summary>
    public required OtlpExportProtocol OtlpProtocol { get; init; }

    /// <summary>How often metrics are pushed with OTLP.</summary>
    public required TimeSpan OtlpInterval { get; init; }

    /// <summary>Binds and validates <c>broker.metrics</c>.</summary>
    public static MetricsSettings Bind(SettingsReader r)
    {
        const string endpointKey = "broker.metrics.otlp-endpoint";
        var endpoint = r.String(endpointKey).Trim();
        Uri? uri = null;
        if (endpoint.Length > 0 && !(Uri.TryCreate(endpoint, UriKind.Absolute, out uri) && uri.Scheme is "http" or "https"))
            throw r.Invalid(endpointKey, endpoint, "empty (no OTLP export) or the collector's URL, e.g. http://otel-collector:4317");
        return new MetricsSettings
        {
            GaugeTimeout = r.Duration("broker.metrics.gauge-timeout"),
            OtlpEndpoint = uri,
            OtlpProtocol = r.Choice("broker.metrics.otlp-protocol",
                [("grpc", OtlpExportProtocol.Grpc), ("http/protobuf", OtlpExportProtocol.HttpProtobuf), ("http", OtlpExportProtocol.HttpProtobuf)],
                "grpc or http/protobuf"),
            OtlpInterval = r.Duration("broker.metrics.otlp-interval", TimeSpan.FromMilliseconds(100)),
        };
    }
}
