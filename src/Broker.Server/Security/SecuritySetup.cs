using Akka.Configuration;
using Broker.Core.Security;
using Broker.Core.Settings;

namespace Broker.Server.Security;

/// <summary>Composition of issue 12's pieces: settings bound once, startup exposure checks, signing keys, the node's security and the WebSocket gate.</summary>
public static class SecuritySetup
{
    /// <summary>Binds <c>broker.auth</c>, <c>broker.limits</c> and origins, refuses an unprotected exposure, and registers the node's security.</summary>
    public static SecuritySettings AddBrokerSecurity(this WebApplicationBuilder builder, Config config, KafkaSettings kafka, string adminToken)
    {
        var settings = SecuritySettings.FromConfig(config);
        var exposure = Exposure.Check(config, settings, adminToken);
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(exposure);
        if (settings.Auth.Enabled)
            builder.Services.AddSingleton(sp => SigningKeys.LoadAsync(settings.Auth, sp.GetRequiredService<ILogger<SigningKeys>>()).GetAwaiter().GetResult());
        builder.Services.AddSingleton(sp => new NodeSecurity(settings,
            settings.Auth.Enabled ? new TokenValidator(settings.Auth, sp.GetRequiredService<SigningKeys>()) : null, kafka));
        // An empty origin list accepts every origin only on the anonymous quick start bound to loopback.
        builder.Services.AddSingleton(sp => new WebSocketGate(sp.GetRequiredService<NodeSecurity>(),
            new OriginPolicy(settings.AllowedOrigins, anyWhenEmpty: !settings.Auth.Enabled && exposure.PublicOnLoopback)));
        return settings;
    }

    /// <summary>Loads the signing keys now, so that a key source that cannot be read stops the node at start.</summary>
    public static WebApplication UseBrokerSecurity(this WebApplication app)
    {
        try
        {
            app.Services.GetRequiredService<NodeSecurity>();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or HttpRequestException or TaskCanceledException or ArgumentException or System.Security.Cryptography.CryptographicException or System.Text.Json.JsonException or FormatException)
        {
            throw new ConfigurationException($"broker.auth: cannot load the token signing keys: {e.Message}");
        }
        return app;
    }
}
