using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Security;

/// <summary>The outcome of validating a token: an identity, or why the token was refused.</summary>
public readonly record struct TokenResult(ClientIdentity? Identity, string? Problem)
{
    public bool Valid => Identity is not null;
}

/// <summary>
/// Validates client tokens (JWT) with Microsoft.IdentityModel: a signature by one of the
/// <see cref="SigningKeys"/> with an algorithm those keys verify (HS256 with the secret only,
/// RS256/ES256 with public keys only, so neither <c>alg: none</c> nor an RSA public key used as an
/// HMAC secret passes), <c>exp</c>/<c>nbf</c> within <c>clock-skew</c>, <c>iss</c> and <c>aud</c>
/// when configured, and a <c>sub</c>. The grants are the string arrays (or space-separated
/// strings) of the claims <c>claims.subscribe</c> and <c>claims.publish</c>.
/// </summary>
public sealed class TokenValidator(AuthSettings settings, SigningKeys keys)
{
    private readonly JsonWebTokenHandler _handler = new() { MaximumTokenSizeInBytes = 16 * 1024 };

    public AuthSettings Settings => settings;

    public async Task<TokenResult> ValidateAsync(string token, string remoteAddress)
    {
        var result = await _handler.ValidateTokenAsync(token, Parameters()).ConfigureAwait(false);
        if (!result.IsValid && result.Exception is SecurityTokenSignatureKeyNotFoundException && await keys.ReloadAsync().ConfigureAwait(false))
            result = await _handler.ValidateTokenAsync(token, Parameters()).ConfigureAwait(false); // a key rotated in since the last reload
        if (!result.IsValid) return new TokenResult(null, Describe(result.Exception));
        var jwt = (JsonWebToken)result.SecurityToken;
        if (string.IsNullOrEmpty(jwt.Subject)) return new TokenResult(null, "the token has no sub (subject)");
        DateTimeOffset? exp = jwt.TryGetPayloadValue<long>("exp", out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;
        return new TokenResult(new ClientIdentity(jwt.Subject, exp, Grants(jwt, settings.SubscribeClaim), Grants(jwt, settings.PublishClaim),
            string.IsNullOrEmpty(jwt.Id) ? null : jwt.Id, remoteAddress), null);
    }

    private TokenValidationParameters Parameters() => new()
    {
        IssuerSigningKeys = keys.Current,
        ValidAlgorithms = keys.Algorithms,
        RequireSignedTokens = true,
        TryAllIssuerSigningKeys = true,
        ValidateIssuerSigningKey = false, // keys are trusted by configuration; certificates in a PEM file are a key carrier
        ValidateLifetime = true,
        RequireExpirationTime = true,
        ClockSkew = settings.ClockSkew,
        ValidateIssuer = settings.Issuer is not null,
        ValidIssuer = settings.Issuer,
        ValidateAudience = settings.Audience is not null,
        ValidAudience = settings.Audience,
    };

    private static IReadOnlyList<TopicPattern> Grants(JsonWebToken jwt, string claim)
    {
        if (!jwt.TryGetPayloadValue<JsonElement>(claim, out var value)) return [];
        var patterns = new List<TopicPattern>();
        switch (value.ValueKind)
        {
            case JsonValueKind.Array:
                foreach (var item in value.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String && item.GetString() is { Length: > 0 } p) patterns.Add(new TopicPattern(p));
                }
                break;
            case JsonValueKind.String:
                foreach (var p in value.GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries)) patterns.Add(new TopicPattern(p));
                break;
        }
        return patterns;
    }

    private static string Describe(Exception? e) => e switch
    {
        SecurityTokenExpiredException x => $"the token expired at {x.Expires:u}",
        SecurityTokenNotYetValidException x => $"the token is not valid before {x.NotBefore:u}",
        SecurityTokenNoExpirationException => "the token has no exp (expiry)",
        SecurityTokenInvalidAudienceException => "the token is not for this audience (aud)",
        SecurityTokenInvalidIssuerException => "the token is not from the expected issuer (iss)",
        SecurityTokenInvalidAlgorithmException => "the token's algorithm is not accepted (HS256 with the shared secret, RS256/ES256 with the configured public keys)",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token's signature is not valid",
        SecurityTokenMalformedException => "the token is not a JWT",
        _ => "the token is not valid",
    };
}
