using Broker.Core.Settings;

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
    TimeSpan JwksTimeout,
    TimeSpan JwksMinReload,
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

/// <summary>Everything security-related a node reads from its configuration, bound once at startup (<see cref="Bind"/>).</summary>
public sealed record SecuritySettings(
    AuthSettings Auth,
    LimitSettings Limits,
    IReadOnlyList<string> AllowedOrigins)
{
    /// <summary>
    /// Binds and validates <c>broker.auth</c>, <c>broker.limits</c> and <c>broker.websocket.allowed-origins</c>.
    /// <paramref name="websocket"/> bounds the byte rates (a rate below one publish's data would
    /// refuse every large publish); <paramref name="namespaces"/> carry the access levels of
    /// <c>broker.namespaces</c> (bound with the Kafka mapping, same entries, same order).
    /// </summary>
    public static SecuritySettings Bind(SettingsReader r, ConnectionSettings websocket, IReadOnlyList<NamespaceRule> namespaces)
    {
        const string modeKey = "broker.auth.mode";
        var mode = r.Choice(modeKey,
            [("off", AuthMode.Off), ("false", AuthMode.Off), ("no", AuthMode.Off), ("optional", AuthMode.Optional),
             ("required", AuthMode.Required), ("on", AuthMode.Required), ("true", AuthMode.Required), ("yes", AuthMode.Required)],
            "off, optional or required");
        const string secretKey = "broker.auth.hs256-secret";
        const string secretFileKey = "broker.auth.hs256-secret-file";
        var secret = Optional(r, secretKey);
        var secretFile = r.String(secretFileKey).Trim();
        var fromFile = secret is null && secretFile.Length > 0 ? r.ReadSecret(secretFileKey, secretFile, "the HS256 secret") : null;
        // HS256 needs at least 256 bits of key (RFC 7518 §3.2); shorter secrets are guessable.
        const string longEnough = "at least 32 bytes (e.g. head -c 32 /dev/urandom | base64)";
        if (secret is not null && System.Text.Encoding.UTF8.GetByteCount(secret) < 32) throw r.Invalid(secretKey, "…", longEnough);
        if (fromFile is not null && System.Text.Encoding.UTF8.GetByteCount(fromFile) < 32)
            throw r.Invalid(secretFileKey, r.Raw(secretFileKey), "a file holding " + longEnough);
        var jwksUrl = Optional(r, "broker.auth.jwks-url");
        if (jwksUrl is not null && !(Uri.TryCreate(jwksUrl, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"))
            throw r.Invalid("broker.auth.jwks-url", jwksUrl, "an http(s) URL of a JWKS document, e.g. https://issuer.example.com/.well-known/jwks.json");
        var defaults = (
            Subscribe: r.Choice("broker.auth.default-access.subscribe", NamespaceRule.AccessLevels),
            Publish: r.Choice("broker.auth.default-access.publish", NamespaceRule.AccessLevels));
        var auth = new AuthSettings(
            mode,
            r.Switch("broker.auth.allow-anonymous-public"),
            secret ?? fromFile,
            r.OptionalFilePath("broker.auth.public-keys-file"),
            r.OptionalFilePath("broker.auth.jwks-file"),
            jwksUrl,
            r.Duration("broker.auth.jwks-refresh"),
            r.Duration("broker.auth.jwks-timeout"),
            r.Duration("broker.auth.jwks-min-reload"),
            Optional(r, "broker.auth.issuer"),
            Optional(r, "broker.auth.audience"),
            r.Duration("broker.auth.clock-skew", TimeSpan.Zero),
            r.Duration("broker.auth.first-frame-timeout"),
            r.Duration("broker.auth.refresh-notice", TimeSpan.Zero),
            r.Switch("broker.auth.query-token"),
            r.NonEmpty("broker.auth.claims.subscribe", "the name of a token claim"),
            r.NonEmpty("broker.auth.claims.publish", "the name of a token claim"),
            defaults.Subscribe,
            defaults.Publish,
            NamespaceLevels(r, namespaces, defaults, mode));
        if (auth.Enabled && !auth.HasKeys)
            throw r.Invalid(modeKey, r.Raw(modeKey),
                "off, or token signing keys with it: broker.auth.hs256-secret(-file), public-keys-file, jwks-file or jwks-url (env BROKER_AUTH_HS256_SECRET_FILE, …)");

        var maxData = websocket.MaxDataBytes;
        long ByteRate(string key)
        {
            var value = r.Bytes(key, 0);
            return value == 0 || value >= maxData ? value
                : throw r.Invalid(key, r.Raw(key), $"at least broker.websocket.max-data-bytes ({maxData} B), or 0 for no limit");
        }
        var limits = new LimitSettings(
            r.Int("broker.limits.connections-per-node", 0),
            r.Int("broker.limits.connections-per-subject", 0),
            r.Int("broker.limits.connections-per-ip", 0),
            r.Int("broker.limits.connections-per-second", 0),
            r.Duration("broker.limits.connection-retry-after"),
            r.Int("broker.limits.publishes-per-second", 0),
            ByteRate("broker.limits.publish-bytes-per-second"),
            r.Int("broker.limits.subject-publishes-per-second", 0),
            ByteRate("broker.limits.subject-publish-bytes-per-second"),
            r.Int("broker.limits.subscribes-per-second", 0),
            r.Int("broker.limits.topic-creations-per-minute", 0),
            r.Int("broker.limits.sessions-per-subject", 0));
        return new SecuritySettings(auth, limits, r.StringList("broker.websocket.allowed-origins"));
    }

    private static string? Optional(SettingsReader r, string key) => r.String(key).Trim() is { Length: > 0 } v ? v : null;

    /// <summary>
    /// The access levels of <c>broker.namespaces</c> (their <c>subscribe</c> and <c>publish</c> keys;
    /// a namespace without them has the defaults of <c>broker.auth.default-access</c>).
    /// </summary>
    private static IReadOnlyList<NamespaceAccess> NamespaceLevels(SettingsReader r, IReadOnlyList<NamespaceRule> namespaces,
        (AccessLevel Subscribe, AccessLevel Publish) defaults, AuthMode mode)
    {
        var list = new List<NamespaceAccess>();
        for (var i = 0; i < namespaces.Count; i++)
        {
            var n = namespaces[i];
            // With auth off nobody has a token: a level that needs one would lock everybody out, so say so at start.
            foreach (var (field, level) in new[] { ("subscribe", n.Subscribe), ("publish", n.Publish) })
            {
                if (mode == AuthMode.Off && level is { } l && l != AccessLevel.Anonymous)
                    throw r.Invalid($"broker.namespaces[{i}].{field}", l.ToString().ToLowerInvariant(),
                        "anonymous (or no level) while broker.auth.mode = off: nobody has a token, so this level would refuse every client");
            }
            list.Add(new NamespaceAccess(new TopicPattern(n.Pattern), n.Subscribe ?? defaults.Subscribe, n.Publish ?? defaults.Publish));
        }
        return list;
    }
}
