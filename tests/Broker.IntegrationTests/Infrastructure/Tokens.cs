using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>Real client tokens signed in the test (HS256 with a secret, RS256 with an RSA key of a JWKS document), and forged ones.</summary>
public static class Tokens
{
    public const string Secret = "test-secret-of-at-least-thirty-two-bytes!";
    public const string Audience = "broker-tests";

    private static readonly JsonWebTokenHandler Handler = new();

    /// <summary>An HS256 token for <paramref name="sub"/> expiring in <paramref name="lifetime"/> (default 1 h).</summary>
    public static string Hs256(string sub, TimeSpan? lifetime = null, string[]? subTopics = null, string[]? pubTopics = null,
        string audience = Audience, string secret = Secret, DateTime? notBefore = null) =>
        Sign(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256, sub, lifetime, subTopics, pubTopics, audience, notBefore);

    /// <summary>An RS256 token signed by <paramref name="key"/> (its kid in the header).</summary>
    public static string Rs256(RsaSecurityKey key, string sub, TimeSpan? lifetime = null, string[]? subTopics = null, string[]? pubTopics = null) =>
        Sign(key, SecurityAlgorithms.RsaSha256, sub, lifetime, subTopics, pubTopics, Audience, null);

    private static string Sign(SecurityKey key, string alg, string sub, TimeSpan? lifetime, string[]? subTopics, string[]? pubTopics, string audience, DateTime? notBefore)
    {
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object> { ["sub"] = sub };
        if (subTopics is not null) claims["sub_topics"] = subTopics;
        if (pubTopics is not null) claims["pub_topics"] = pubTopics;
        var expires = now + (lifetime ?? TimeSpan.FromHours(1));
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            Audience = audience,
            IssuedAt = expires < now ? expires.AddMinutes(-1) : now,
            NotBefore = notBefore ?? (expires < now ? expires.AddMinutes(-1) : now),
            Expires = expires,
            SigningCredentials = new SigningCredentials(key, alg),
        });
    }

    /// <summary>An unsigned token (<c>alg: none</c>) claiming <paramref name="sub"/>.</summary>
    public static string AlgNone(string sub)
    {
        static string B64(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        return B64("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." + B64(JsonSerializer.Serialize(new { sub, aud = Audience, exp })) + ".";
    }

    public static RsaSecurityKey NewRsaKey(string kid) => new(RSA.Create(2048)) { KeyId = kid };

    /// <summary>Writes a JWKS document with the public halves of <paramref name="keys"/> (atomically: a rename).</summary>
    public static void WriteJwks(string path, params RsaSecurityKey[] keys)
    {
        var array = new JsonArray();
        foreach (var key in keys)
        {
            var p = key.Rsa.ExportParameters(false);
            array.Add(new JsonObject
            {
                ["kty"] = "RSA",
                ["use"] = "sig",
                ["alg"] = "RS256",
                ["kid"] = key.KeyId,
                ["n"] = Base64UrlEncoder.Encode(p.Modulus),
                ["e"] = Base64UrlEncoder.Encode(p.Exponent),
            });
        }
        var temp = path + ".tmp";
        File.WriteAllText(temp, new JsonObject { ["keys"] = array }.ToJsonString());
        File.Move(temp, path, overwrite: true);
    }
}
