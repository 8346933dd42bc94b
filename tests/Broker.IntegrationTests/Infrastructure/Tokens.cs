using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// Real client tokens signed in the test (HS256 with a secret, RS256 and ES256 with keys the broker
/// reads from a JWKS document or a PEM file), and forged ones.
/// </summary>
public static class Tokens
{
    public const string Secret = "test-secret-of-at-least-thirty-two-bytes!";
    public const string Audience = "broker-tests";

    private static readonly JsonWebTokenHandler Handler = new();

    /// <summary>An HS256 token for <paramref name="sub"/> expiring in <paramref name="lifetime"/> (default 1 h).</summary>
    public static string Hs256(string sub, TimeSpan? lifetime = null, string[]? subTopics = null, string[]? pubTopics = null,
        string audience = Audience, string secret = Secret, DateTime? notBefore = null, string? issuer = null) =>
        Sign(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256, sub, lifetime, subTopics, pubTopics, audience, notBefore, issuer);

    /// <summary>An RS256 token signed by <paramref name="key"/> (its kid in the header).</summary>
    public static string Rs256(RsaSecurityKey key, string sub, TimeSpan? lifetime = null, string[]? subTopics = null, string[]? pubTopics = null, string? issuer = null) =>
        Sign(key, SecurityAlgorithms.RsaSha256, sub, lifetime, subTopics, pubTopics, Audience, null, issuer);

    /// <summary>An ES256 token signed by <paramref name="key"/> (a P-256 key; its kid in the header).</summary>
    public static string Es256(ECDsaSecurityKey key, string sub, TimeSpan? lifetime = null, string[]? subTopics = null, string[]? pubTopics = null, string? issuer = null) =>
        Sign(key, SecurityAlgorithms.EcdsaSha256, sub, lifetime, subTopics, pubTopics, Audience, null, issuer);

    private static string Sign(SecurityKey key, string alg, string sub, TimeSpan? lifetime, string[]? subTopics, string[]? pubTopics, string audience, DateTime? notBefore, string? issuer)
    {
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object> { ["sub"] = sub };
        if (subTopics is not null) claims["sub_topics"] = subTopics;
        if (pubTopics is not null) claims["pub_topics"] = pubTopics;
        var expires = now + (lifetime ?? TimeSpan.FromHours(1));
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            Issuer = issuer,
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

    public static ECDsaSecurityKey NewEcKey(string kid) => new(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = kid };

    /// <summary>Writes a JWKS document with the public halves of <paramref name="keys"/> (atomically: a rename).</summary>
    public static void WriteJwks(string path, params SecurityKey[] keys) => WriteAtomically(path, Jwks(keys));

    /// <summary>A JWKS document with the public halves of <paramref name="keys"/> (RSA or EC P-256).</summary>
    public static string Jwks(params SecurityKey[] keys)
    {
        var array = new JsonArray();
        foreach (var key in keys)
        {
            switch (key)
            {
                case RsaSecurityKey rsa:
                    var p = rsa.Rsa.ExportParameters(false);
                    array.Add(new JsonObject
                    {
                        ["kty"] = "RSA", ["use"] = "sig", ["alg"] = "RS256", ["kid"] = rsa.KeyId,
                        ["n"] = Base64UrlEncoder.Encode(p.Modulus), ["e"] = Base64UrlEncoder.Encode(p.Exponent),
                    });
                    break;
                case ECDsaSecurityKey ec:
                    var q = ec.ECDsa.ExportParameters(false).Q;
                    array.Add(new JsonObject
                    {
                        ["kty"] = "EC", ["use"] = "sig", ["alg"] = "ES256", ["kid"] = ec.KeyId, ["crv"] = "P-256",
                        ["x"] = Base64UrlEncoder.Encode(q.X), ["y"] = Base64UrlEncoder.Encode(q.Y),
                    });
                    break;
                default:
                    throw new ArgumentException($"no JWK for a {key.GetType().Name}");
            }
        }
        return new JsonObject { ["keys"] = array }.ToJsonString();
    }

    /// <summary>Writes the public halves of <paramref name="keys"/> as PEM <c>PUBLIC KEY</c> blocks (atomically: a rename).</summary>
    public static void WritePem(string path, params AsymmetricSecurityKey[] keys) =>
        WriteAtomically(path, string.Join("\n", keys.Select(k => k switch
        {
            RsaSecurityKey rsa => rsa.Rsa.ExportSubjectPublicKeyInfoPem(),
            ECDsaSecurityKey ec => ec.ECDsa.ExportSubjectPublicKeyInfoPem(),
            _ => throw new ArgumentException($"no PEM for a {k.GetType().Name}"),
        })) + "\n");

    private static void WriteAtomically(string path, string text)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
