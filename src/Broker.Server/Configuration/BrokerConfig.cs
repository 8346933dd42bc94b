using Akka.Configuration;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>
/// Loads the broker's HOCON in layers, each over the one before: the built-in defaults
/// (hocon/broker.conf, <see cref="BrokerDefaults"/>), the file named by <c>BROKER_CONFIG</c> (a
/// relative path is relative to the directory the broker was started from), environment
/// variables (<see cref="EnvironmentKeys"/>), then explicit overrides (tests). Akka's HOCON parser
/// does not substitute environment variables, so they are applied here. Nothing is validated here:
/// <see cref="NodeSettings.Bind"/> does that.
/// </summary>
public static class BrokerConfig
{
    /// <summary>The environment variable naming a HOCON file merged over the defaults.</summary>
    public const string ConfigFileVariable = "BROKER_CONFIG";

    /// <summary>Seed nodes, comma-separated (a list key, so it is not in <see cref="EnvironmentKeys"/>).</summary>
    public const string SeedsVariable = "BROKER_SEEDS";

    /// <summary>The key <see cref="SeedsVariable"/> sets.</summary>
    public const string SeedsKey = "broker.cluster.seed-nodes";

    internal const string DefaultsOrigin = "the defaults";
    internal const string EnvironmentOrigin = "the environment";
    internal const string OverrideOrigin = "an override";

    /// <summary>Environment variables and the HOCON key each one sets (and <see cref="SeedsVariable"/>).</summary>
    public static readonly IReadOnlyDictionary<string, string> EnvironmentKeys = new Dictionary<string, string>
    {
        ["BROKER_HTTP_HOST"] = "broker.http.host",
        ["BROKER_HTTP_PORT"] = "broker.http.port",
        ["BROKER_DASHBOARD"] = "broker.http.dashboard",
        ["BROKER_INTERNAL_ENDPOINTS"] = "broker.http.internal-endpoints",
        ["BROKER_TLS_CERT_FILE"] = "broker.http.tls.cert-file",
        ["BROKER_TLS_KEY_FILE"] = "broker.http.tls.key-file",
        ["BROKER_TLS_PFX_FILE"] = "broker.http.tls.pfx-file",
        ["BROKER_TLS_PFX_PASSWORD_FILE"] = "broker.http.tls.pfx-password-file",
        ["BROKER_AUTH_MODE"] = "broker.auth.mode",
        ["BROKER_AUTH_ALLOW_ANONYMOUS_PUBLIC"] = "broker.auth.allow-anonymous-public",
        ["BROKER_AUTH_HS256_SECRET"] = "broker.auth.hs256-secret",
        ["BROKER_AUTH_HS256_SECRET_FILE"] = "broker.auth.hs256-secret-file",
        ["BROKER_AUTH_PUBLIC_KEYS_FILE"] = "broker.auth.public-keys-file",
        ["BROKER_AUTH_JWKS_FILE"] = "broker.auth.jwks-file",
        ["BROKER_AUTH_JWKS_URL"] = "broker.auth.jwks-url",
        ["BROKER_AUTH_ISSUER"] = "broker.auth.issuer",
        ["BROKER_AUTH_AUDIENCE"] = "broker.auth.audience",
        ["BROKER_ADMIN_HOST"] = "broker.admin.host",
        ["BROKER_ADMIN_PORT"] = "broker.admin.port",
        ["BROKER_ADMIN_TOKEN"] = "broker.admin.token",
        ["BROKER_ADMIN_TOKEN_FILE"] = "broker.admin.token-file",
        ["BROKER_LOG_FORMAT"] = "broker.logging.format",
        ["BROKER_LOG_LEVEL"] = "broker.logging.level",
        ["BROKER_LOG_REQUESTS"] = "broker.logging.requests",
        ["BROKER_OTLP_ENDPOINT"] = "broker.metrics.otlp-endpoint",
        ["BROKER_KAFKA_BOOTSTRAP"] = "broker.kafka.bootstrap-servers",
        ["BROKER_KAFKA_EMBEDDED"] = "broker.kafka.embedded.enabled",
        ["BROKER_EMBEDDED_KAFKA_PORT"] = "broker.kafka.embedded.port",
        ["BROKER_KAFKA_TOPIC_PREFIX"] = "broker.kafka.topic-prefix",
        ["BROKER_CLUSTER_HOST"] = "broker.cluster.hostname",
        ["BROKER_CLUSTER_PORT"] = "broker.cluster.port",
        ["BROKER_CLUSTER_TLS_PFX_FILE"] = "broker.cluster.tls.pfx-file",
        ["BROKER_CLUSTER_TLS_PFX_PASSWORD_FILE"] = "broker.cluster.tls.pfx-password-file",
        ["BROKER_SBR_STRATEGY"] = "broker.cluster.split-brain-resolver.active-strategy",
        ["BROKER_TOPIC_CREATION"] = "broker.kafka.topic-creation",
        ["BROKER_DEVKAFKA_ADMIN"] = "broker.kafka.devkafka-admin",
        ["BROKER_MAX_FRAME_BYTES"] = "broker.websocket.max-frame-bytes",
        ["BROKER_OUTBOUND_BUFFER"] = "broker.websocket.outbound-buffer-frames",
        ["BROKER_WS_COMPRESSION"] = "broker.websocket.compression",
        ["BROKER_DB_PROVIDER"] = "broker.persistence.provider",
        ["BROKER_DB_CONNECTION"] = "broker.persistence.connection-string",
        ["BROKER_DB_PATH"] = "broker.persistence.sqlite.path",
        ["BROKER_DB_PASSWORD_FILE"] = "broker.persistence.password-file",
    };

    /// <summary>
    /// Loads the layers. Throws <see cref="StartupException"/> when the file named by
    /// <c>BROKER_CONFIG</c> cannot be read or parsed.
    /// </summary>
    /// <param name="overrides">HOCON keys and string values over everything else (tests, tools).</param>
    /// <param name="environment">Reads an environment variable (tests pass their own).</param>
    public static LoadedConfig Load(IReadOnlyDictionary<string, string>? overrides = null, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var defaults = BrokerDefaults.Config;
        var layers = new List<(string, Config)> { (DefaultsOrigin, defaults) };
        var files = new List<string>();
        var config = defaults;

        if (environment(ConfigFileVariable) is { Length: > 0 } file)
        {
            var path = Path.GetFullPath(file);
            var layer = ParseFile(file, path);
            files.Add(path);
            layers.Add((path, layer));
            config = layer.WithFallback(config);
        }

        var fromEnvironment = new Dictionary<string, string>();
        var values = new Dictionary<string, string>();
        foreach (var (variable, key) in EnvironmentKeys)
        {
            if (environment(variable) is not { Length: > 0 } v) continue;
            values[key] = v;
            fromEnvironment[variable] = key;
        }
        var hocon = ToHocon(values);
        // BROKER_SEEDS is a list: "akka.tcp://broker@a:4053,akka.tcp://broker@b:4053".
        if (environment(SeedsVariable) is { Length: > 0 } seeds)
        {
            var list = string.Join(", ", seeds.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Quote));
            hocon += $"\n{SeedsKey} = [{list}]";
            fromEnvironment[SeedsVariable] = SeedsKey;
        }
        if (hocon.Length > 0)
        {
            var layer = ConfigurationFactory.ParseString(hocon);
            layers.Add((EnvironmentOrigin, layer));
            config = layer.WithFallback(config);
        }

        if (overrides is { Count: > 0 })
        {
            var layer = ConfigurationFactory.ParseString(ToHocon(overrides));
            layers.Add((OverrideOrigin, layer));
            config = layer.WithFallback(config);
        }
        return new LoadedConfig(config, layers, files, fromEnvironment);
    }

    private static Config ParseFile(string given, string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var problem = e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message;
            throw new StartupException($"cannot read the configuration file {ConfigFileVariable}={given} ({path}): {problem}");
        }
        try
        {
            return ConfigurationFactory.ParseString(text);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var reason = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? e.GetType().Name;
            throw new StartupException($"cannot parse the configuration file {path} ({ConfigFileVariable}): {reason}");
        }
    }

    private static string ToHocon(IReadOnlyDictionary<string, string> values) =>
        string.Join('\n', values.Select(kv => $"{kv.Key} = {Quote(kv.Value)}"));

    /// <summary>A HOCON string literal.</summary>
    public static string Quote(string v) => "\"" + v.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}
