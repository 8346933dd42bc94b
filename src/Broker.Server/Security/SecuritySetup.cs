using Broker.Core.Security;
using Broker.Core.Settings;
using Broker.Server.Configuration;

namespace Broker.Server.Security;

/// <summary>Composition of the security pieces: node's security from its bound settings, signing keys, the origin policy and the gates of /ws and HTTP publish.</summary>
public static class SecuritySetup
{
    /// <summary>
    /// Registers the node's security: <paramref name="settings"/> (<c>broker.auth</c>, <c>broker.limits</c>,
    /// origins, bound with the node's settings) and <paramref name="exposure"/> (checked before anything starts).
    /// </summary>
    public static WebApplicationBuilder AddBrokerSecurity(this WebApplicationBuilder builder, SecuritySettings settings, Exposure exposure, KafkaSettings kafka)
    {
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(exposure);
        if (settings.Auth.Enabled)
            builder.Services.AddSingleton(sp => SigningKeys.LoadAsync(settings.Auth, sp.GetRequiredService<ILogger<SigningKeys>>()).GetAwaiter().GetResult());
        builder.Services.AddSingleton(sp => new NodeSecurity(settings,
            settings.Auth.Enabled ? new TokenValidator(settings.Auth, sp.GetRequiredService<SigningKeys>()) : null, kafka,
            sp.GetRequiredService<Broker.Core.Log.KafkaClientLog>()));
        // An empty origin list accepts every origin only on the anonymous quick start bound to loopback.
        builder.Services.AddSingleton(new OriginPolicy(settings.AllowedOrigins, anyWhenEmpty: !settings.Auth.Enabled && exposure.PublicOnLoopback));
        builder.Services.AddSingleton(sp => new WebSocketGate(sp.GetRequiredService<NodeSecurity>(), sp.GetRequiredService<OriginPolicy>()));
        builder.Services.AddSingleton(sp => new HttpPublishGate(sp.GetRequiredService<NodeSecurity>(), sp.GetRequiredService<OriginPolicy>()));
        return builder;
    }

    /// <summary>Loads the signing keys now, so that a key source that cannot be read stops the node at start (<see cref="StartupException"/>).</summary>
    public static WebApplication UseBrokerSecurity(this WebApplication app)
    {
        try
        {
            app.Services.GetRequiredService<NodeSecurity>();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or HttpRequestException or TaskCanceledException or ArgumentException or System.Security.Cryptography.CryptographicException or System.Text.Json.JsonException or FormatException)
        {
            throw new StartupException($"cannot load the token signing keys of broker.auth (public-keys-file, jwks-file, jwks-url): {e.Message.Split('\n')[0].Trim()}", e);
        }
        return app;
    }
}
