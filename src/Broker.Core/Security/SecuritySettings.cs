using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace Broker.Core.Security;

/// <summary>How a node treats tokens (<c>broker.auth.mode</c>).</summary>
public enum AuthMode
{
    /// <summary>No tokens: every client is anonymous and namespace access levels are not enforced.</summary>
    Off,
    /// <summary>Tokens are validated when presented; clients without one are anonymous.</summary>
    Optional,
    /// <summary>Every connection must present a valid token (on the upgrade or in its first frame).</summary>
    Required,
}

/// <summary>Who may subscribe to or publish on the topics of a namespace.</summary>
public enum AccessLevel
{
    /// <summary>Any client, with or without a token.</summary>
    Anonymous,
    /// <summary>Any client with a valid token.</summary>
    Authenticated,
    /// <summary>Only clients whose token grants the topic (<c>sub_topics</c> / <c>pub_topics</c>).</summary>
    Granted,
}

/// <summary>The access levels of one <c>broker.namespaces</c> entry (same pattern, same first-match order as the Kafka mapping).</summary>
public sealed record NamespaceAccess(TopicPattern Pattern, AccessLevel Subscribe, AccessLevel Publish);

/// <summary>Token validation and the auth flow (HOCON <c>broker.auth</c>).</summary>
public sealed record AuthSettings(
    AuthMode Mode,
    bool AllowAnonymousPublic,
    string? Hs256Secret,
    string? PublicKeysFile,
    string? JwksFile,
    string? JwksUrl,
    TimeSpan JwksRefresh,
    string? Issuer,
    string? Audience,
    TimeSpan ClockSkew,
    TimeSpan FirstFrameTimeout,
    TimeSpan RefreshNotice,
    bool QueryToken,
    string SubscribeClaim,
    string PublishClaim,
    AccessLevel DefaultSubscribe,
    AccessLevel DefaultPublish,
    IReadOnlyList<NamespaceAccess> Namespaces)
{
    public bool Enabled => Mode != AuthMode.Off;

    /// <summary>Whether any source of signing keys is configured.</summary>
    public bool HasKeys => Hs256Secret is not null || PublicKeysFile is not null || JwksFile is not null || JwksUrl is not null;
}

/// <summary>Admission control and quotas (HOCON <c>broker.limits</c>); 0 turns a limit off.</summary>
public sealed record LimitSettings(
    int ConnectionsPerNode,
    int ConnectionsPerSubject,
    int ConnectionsPerIp,
    int ConnectionsPerSecond,
    TimeSpan ConnectionRetryAfter,
    int PublishesPerSecond,
    long PublishBytesPerSecond,
    int SubjectPublishesPerSecond,
    long SubjectPublishBytesPerSecond,
    int SubscribesPerSecond,
    int TopicCreationsPerMinute,
    int SessionsPerSubject);

/// <summary>Everything security-related a node reads from its configuration, bound once (<see cref="FromConfig"/>).</summary>
public sealed record SecuritySettings(
    AuthSettings Auth,
    LimitSettings Limits,
    IReadOnlyList<string> AllowedOrigins)
{
    public static SecuritySettings FromConfig(Config c)
    {
        var mode = c.GetString("broker.auth.mode").Trim().ToLowerInvariant() switch
        {
            "off" or "false" or "no" => AuthMode.Off,
            "optional" => AuthMode.Optional,
            "required" or "on" or "true" or "yes" => AuthMode.Required,
            var other => throw new ConfigurationException($"broker.auth.mode: '{other}' is not off, optional or required"),
        };
        var secret = Optional(c, "broker.auth.hs256-secret");
        var secretFile = Optional(c, "broker.auth.hs256-secret-file");
        if (secret is null && secretFile is not null) secret = SecretFile.Read(secretFile, "broker.auth.hs256-secret-file");
        // HS256 needs at least 256 bits of key (RFC 7518 §3.2); shorter secrets are guessable.
        if (secret is not null && System.Text.Encoding.UTF8.GetByteCount(secret) < 32)
            throw new ConfigurationException("broker.auth.hs256-secret: at least 32 bytes (e.g. head -c 32 /dev/urandom | base64)");
        var defaults = (Subscribe: Level(c, "broker.auth.default-access.subscribe"), Publish: Level(c, "broker.auth.default-access.publish"));
        var auth = new AuthSettings(
            mode,
            c.GetBoolean("broker.auth.allow-anonymous-public"),
            secret,
            Optional(c, "broker.auth.public-keys-file"),
            Optional(c, "broker.auth.jwks-file"),
            Optional(c, "broker.auth.jwks-url"),
            c.GetTimeSpan("broker.auth.jwks-refresh"),
            Optional(c, "broker.auth.issuer"),
            Optional(c, "broker.auth.audience"),
            c.GetTimeSpan("broker.auth.clock-skew"),
            c.GetTimeSpan("broker.auth.first-frame-timeout"),
            c.GetTimeSpan("broker.auth.refresh-notice"),
            c.GetBoolean("broker.auth.query-token"),
            c.GetString("broker.auth.claims.subscribe"),
            c.GetString("broker.auth.claims.publish"),
            defaults.Subscribe,
            defaults.Publish,
            NamespaceLevels(c, defaults, mode));
        if (auth.Enabled && !auth.HasKeys)
            throw new ConfigurationException($"broker.auth.mode = {c.GetString("broker.auth.mode")} needs signing keys: broker.auth.hs256-secret(-file), public-keys-file, jwks-file or jwks-url");

        var limits = new LimitSettings(
            c.GetInt("broker.limits.connections-per-node"),
            c.GetInt("broker.limits.connections-per-subject"),
            c.GetInt("broker.limits.connections-per-ip"),
            c.GetInt("broker.limits.connections-per-second"),
            c.GetTimeSpan("broker.limits.connection-retry-after"),
            c.GetInt("broker.limits.publishes-per-second"),
            c.GetByteSize("broker.limits.publish-bytes-per-second") ?? 0,
            c.GetInt("broker.limits.subject-publishes-per-second"),
            c.GetByteSize("broker.limits.subject-publish-bytes-per-second") ?? 0,
            c.GetInt("broker.limits.subscribes-per-second"),
            c.GetInt("broker.limits.topic-creations-per-minute"),
            c.GetInt("broker.limits.sessions-per-subject"));
        var maxData = c.GetByteSize("broker.websocket.max-data-bytes") ?? 0;
        foreach (var (key, value) in new[] { ("publish-bytes-per-second", limits.PublishBytesPerSecond), ("subject-publish-bytes-per-second", limits.SubjectPublishBytesPerSecond) })
        {
            if (value != 0 && value < maxData)
                throw new ConfigurationException($"broker.limits.{key} = {value}: at least broker.websocket.max-data-bytes ({maxData}), or 0 for no limit");
        }
        return new SecuritySettings(auth, limits, [.. c.GetStringList("broker.websocket.allowed-origins") ?? []]);
    }

    private static string? Optional(Config c, string key) => c.GetString(key, "") is { Length: > 0 } v && v.Trim().Length > 0 ? v.Trim() : null;

    private static AccessLevel Level(Config c, string key) => ParseLevel(c.GetString(key), key);

    private static AccessLevel ParseLevel(string value, string key) => value.Trim().ToLowerInvariant() switch
    {
        "anonymous" => AccessLevel.Anonymous,
        "authenticated" => AccessLevel.Authenticated,
        "granted" => AccessLevel.Granted,
        var other => throw new ConfigurationException($"{key}: '{other}' is not anonymous, authenticated or granted"),
    };

    /// <summary>
    /// The access levels of <c>broker.namespaces</c> (their <c>subscribe</c> and <c>publish</c> keys;
    /// a namespace without them has the defaults of <c>broker.auth.default-access</c>).
    /// </summary>
    private static IReadOnlyList<NamespaceAccess> NamespaceLevels(Config c, (AccessLevel Subscribe, AccessLevel Publish) defaults, AuthMode mode)
    {
        var value = c.GetValue("broker.namespaces");
        if (value is null || value.IsEmpty) return [];
        var list = new List<NamespaceAccess>();
        foreach (var item in value.GetArray())
        {
            var n = new Config(new HoconRoot(item));
            var pattern = n.GetString("pattern", "");
            // With auth off nobody has a token: a level that needs one would lock everybody out, so say so at start.
            if (mode == AuthMode.Off && new[] { "subscribe", "publish" }.FirstOrDefault(k => n.HasPath(k) && ParseLevel(n.GetString(k), k) != AccessLevel.Anonymous) is { } key)
                throw new ConfigurationException($"broker.namespaces '{pattern}': {key} = {n.GetString(key)} needs broker.auth.mode = optional or required");
            list.Add(new NamespaceAccess(
                new TopicPattern(pattern),
                n.HasPath("subscribe") ? ParseLevel(n.GetString("subscribe"), $"broker.namespaces '{pattern}' subscribe") : defaults.Subscribe,
                n.HasPath("publish") ? ParseLevel(n.GetString("publish"), $"broker.namespaces '{pattern}' publish") : defaults.Publish));
        }
        return list;
    }
}

/// <summary>Secrets kept in files (Docker or Kubernetes secrets): read once at start, trimmed; a file that cannot be read stops the node.</summary>
public static class SecretFile
{
    public static string Read(string path, string key)
    {
        var full = Path.GetFullPath(path);
        try
        {
            var text = File.ReadAllText(full).Trim();
            return text.Length > 0 ? text : throw new ConfigurationException($"{key}: '{full}' is empty");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"{key}: cannot read '{full}': {e.Message}");
        }
    }
}
