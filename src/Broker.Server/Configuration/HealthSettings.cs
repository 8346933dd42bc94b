using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>The readiness checks of /readyz and the node state /metrics gathers (HOCON <c>broker.health</c>).</summary>
public sealed record HealthSettings
{
    /// <summary>The Kafka and session-store checks are answered from a cache this long (a probe every second costs one query per period).</summary>
    public required TimeSpan CacheFor { get; init; }

    /// <summary>
    /// Longest a Kafka metadata query or a session-store <c>SELECT 1</c> may take before the check
    /// fails; also how long /metrics waits for the feeds and each shard region (a region that does
    /// not answer is left out of the scrape).
    /// </summary>
    public required TimeSpan CheckTimeout { get; init; }

    /// <summary><c>--healthcheck</c>: longest wait for the node's <c>/readyz</c> answer before it reports unhealthy.</summary>
    public required TimeSpan HealthcheckTimeout { get; init; }

    /// <summary>Binds and validates <c>broker.health</c>.</summary>
    public static HealthSettings Bind(SettingsReader r) => new()
    {
        CacheFor = r.Duration("broker.health.cache-for", TimeSpan.Zero),
        CheckTimeout = r.Duration("broker.health.check-timeout", TimeSpan.FromSeconds(1)),
        HealthcheckTimeout = r.Duration("broker.health.healthcheck-timeout"),
    };
}
