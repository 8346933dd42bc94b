using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests.Security;

/// <summary>
/// A node with broker.auth.mode = required whose signing keys are public keys only: an EC P-256 key
/// in a PEM file (ES256) and RSA keys from a JWKS URL served on 127.0.0.1 by the test (RS256); the
/// issuer and the audience are checked, no clock skew.
/// </summary>
public sealed class TokenKeySourcesFixture : IAsyncLifetime
{
    public const string Issuer = "https://issuer.test/";

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "broker-keys-" + Guid.NewGuid().ToString("N"));

    public TestBroker Broker { get; private set; } = null!;
    public JwksServer Jwks { get; private set; } = null!;
    public Microsoft.IdentityModel.Tokens.ECDsaSecurityKey PemKey { get; } = Tokens.NewEcKey("ec1");
    public Microsoft.IdentityModel.Tokens.RsaSecurityKey FirstUrlKey { get; } = Tokens.NewRsaKey("url-k1");

    public async Task InitializeAsync()
    {
        // The key file in a directory of its own: the node watches the directory (the database is elsewhere).
        var pem = Path.Combine(_dir, "keys", "public-keys.pem");
        Directory.CreateDirectory(Path.GetDirectoryName(pem)!);
        Tokens.WritePem(pem, PemKey);
        Jwks = await JwksServer.StartAsync(FirstUrlKey);
        Broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.auth.mode"] = "required",
            ["broker.auth.public-keys-file"] = pem,
            ["broker.auth.jwks-url"] = Jwks.Url,
            ["broker.auth.issuer"] = Issuer,
            ["broker.auth.audience"] = Tokens.Audience,
            ["broker.auth.clock-skew"] = "0s",
            ["broker.persistence.sqlite.path"] = Path.Combine(_dir, "broker.db"),
        });
    }

    public async Task DisposeAsync()
    {
        await Broker.DisposeAsync();
        await Jwks.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { /* best effort */ }
    }
}

public sealed class TokenKeySourcesTests(TokenKeySourcesFixture fixture) : IClassFixture<TokenKeySourcesFixture>
{
    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task An_es256_token_verifies_against_the_pem_public_keys_file_and_one_of_another_ec_key_is_refused()
    {
        await using (var client = await Broker.ConnectWithTokenAsync(Tokens.Es256(fixture.PemKey, "ec-user", issuer: TokenKeySourcesFixture.Issuer)))
            Assert.Equal("pong", await client.PingAsync("1"));

        var stranger = Tokens.NewEcKey("ec1"); // the same key id, another key
        await using var forged = await Broker.ConnectWithTokenAsync(Tokens.Es256(stranger, "ec-user", issuer: TokenKeySourcesFixture.Issuer));
        Assert.Contains("signature", (string?)(await AuthTests.AssertRefusedAsync(forged))["message"]);
    }

    [Fact]
    public async Task Rs256_tokens_verify_against_the_jwks_url_and_a_key_rotated_in_there_is_fetched_without_restart()
    {
        await using (var first = await Broker.ConnectWithTokenAsync(Tokens.Rs256(fixture.FirstUrlKey, "url-user", issuer: TokenKeySourcesFixture.Issuer)))
            Assert.Equal("pong", await first.PingAsync("1"));

        // The provider rotates: url-k1 out, url-k2 in. A token naming the unknown kid makes the node fetch the URL again.
        var second = Tokens.NewRsaKey("url-k2");
        fixture.Jwks.Publish(second);
        var fetchesBefore = fixture.Jwks.Fetches;
        await using (var rotated = await Broker.ConnectWithTokenAsync(Tokens.Rs256(second, "url-user", issuer: TokenKeySourcesFixture.Issuer)))
            Assert.Equal("pong", await rotated.PingAsync("2"));
        Assert.True(fixture.Jwks.Fetches > fetchesBefore, "the JWKS URL was not fetched again for the new key id");

        // That fetch replaced the URL's keys: the retired key signs nothing any more.
        await using var retired = await Broker.ConnectWithTokenAsync(Tokens.Rs256(fixture.FirstUrlKey, "url-user", issuer: TokenKeySourcesFixture.Issuer));
        Assert.Contains("signature", (string?)(await AuthTests.AssertRefusedAsync(retired))["message"]);
    }

    [Theory]
    [InlineData("https://another-issuer.test/")]
    [InlineData(null)]
    public async Task A_token_from_another_issuer_or_without_one_is_refused(string? issuer)
    {
        await using var upgrade = await Broker.ConnectWithTokenAsync(Tokens.Es256(fixture.PemKey, "ec-user", issuer: issuer));
        Assert.Contains("issuer", (string?)(await AuthTests.AssertRefusedAsync(upgrade))["message"]);

        await using var frame = await Broker.ConnectAsync();
        await frame.SendAsync(new { type = "auth", id = "a", token = Tokens.Es256(fixture.PemKey, "ec-user", issuer: issuer) });
        var error = await AuthTests.AssertRefusedAsync(frame);
        Assert.Equal("a", (string?)error["id"]);
        Assert.Contains("issuer", (string?)error["message"]);
    }
}
