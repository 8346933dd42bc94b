using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests.Security;

/// <summary>
/// A node with broker.auth.mode = required: HS256 tokens with the shared secret and RS256 tokens
/// whose keys are in a JWKS file, audience checked, no clock skew (so short-lived tokens expire
/// on time), topics under user.&gt; readable and writable only with a grant.
/// </summary>
public sealed class AuthFixture : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "broker-auth-" + Guid.NewGuid().ToString("N"));

    public TestBroker Broker { get; private set; } = null!;
    public string JwksPath => Path.Combine(_dir, "jwks.json");
    public Microsoft.IdentityModel.Tokens.RsaSecurityKey FirstKey { get; } = Tokens.NewRsaKey("k1");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        Tokens.WriteJwks(JwksPath, FirstKey);
        Broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.auth.mode"] = "required",
            ["broker.auth.hs256-secret"] = Tokens.Secret,
            ["broker.auth.jwks-file"] = JwksPath,
            ["broker.auth.audience"] = Tokens.Audience,
            ["broker.auth.clock-skew"] = "0s",
            ["broker.auth.first-frame-timeout"] = "2s",
            ["broker.auth.refresh-notice"] = "2s",
            ["broker.persistence.sqlite.path"] = Path.Combine(_dir, "broker.db"),
        }, """
        broker.namespaces = [
          { pattern = "user.>", subscribe = granted, publish = granted }
        ]
        """);
    }

    public async Task DisposeAsync()
    {
        await Broker.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { /* best effort */ }
    }
}

public sealed class AuthTests(AuthFixture fixture) : IClassFixture<AuthFixture>
{
    private TestBroker Broker => fixture.Broker;

    /// <summary>The token was refused: <c>error unauthorized</c>, then close 1008 <c>unauthorized</c>; returns the error.</summary>
    internal static Task<JsonObject> AssertRefusedAsync(WsClient client) =>
        client.ExpectErrorThenCloseAsync("unauthorized", WebSocketCloseStatus.PolicyViolation, "unauthorized");

    [Fact]
    public async Task A_connection_without_a_token_that_sends_a_request_first_is_closed_unauthorized()
    {
        await using var client = await Broker.ConnectAsync();
        await client.SendAsync(new { type = "subscribe", id = "s", topic = "chat" });
        await AssertRefusedAsync(client);
    }

    [Fact]
    public async Task A_connection_without_a_token_that_sends_nothing_is_closed_with_auth_timeout()
    {
        await using var client = await Broker.ConnectAsync();
        var (status, reason) = await client.Closed.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, status);
        Assert.Equal("auth_timeout", reason);
    }

    [Fact]
    public async Task A_first_frame_auth_is_answered_authed_and_the_connection_works()
    {
        await using var client = await Broker.ConnectAsync();
        var authed = await client.RequestAsync(new { type = "auth", id = "a", token = Tokens.Hs256("alice") }, "a");
        Assert.Equal("authed", (string?)authed["type"]);
        Assert.Equal("alice", (string?)authed["sub"]);
        Assert.True((long)authed["exp"]! > DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        await client.SubscribeAsync("auth.first-frame", "s");
        var (_, message) = await client.PublishToSelfAsync("auth.first-frame", new { n = 1 }, "p");
        Assert.Equal(1, (int)message["data"]!["n"]!);
    }

    [Fact]
    public async Task A_bearer_token_on_the_upgrade_and_a_query_token_are_accepted()
    {
        await using var header = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice"));
        await header.SubscribeAsync("auth.header", "s");
        await using var query = await Broker.ConnectAsync("?token=" + Tokens.Hs256("bob"));
        await query.PublishAsync("auth.header", new { n = 2 }, "p");
        Assert.Equal(2, (int)(await header.ExpectAsync("message"))["data"]!["n"]!);
    }

    [Fact]
    public async Task An_expired_token_is_refused()
    {
        await using var upgrade = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice", TimeSpan.FromMinutes(-5)));
        await AssertRefusedAsync(upgrade);
        await using var frame = await Broker.ConnectAsync();
        await frame.SendAsync(new { type = "auth", id = "a", token = Tokens.Hs256("alice", TimeSpan.FromMinutes(-5)) });
        var error = await frame.ExpectAsync("error");
        Assert.Equal("a", (string?)error["id"]);
        Assert.Contains("expired", (string?)error["message"]);
    }

    [Fact]
    public async Task A_token_not_valid_yet_is_refused()
    {
        var early = Tokens.Hs256("alice", notBefore: DateTime.UtcNow.AddMinutes(5));
        await using var upgrade = await Broker.ConnectWithTokenAsync(early);
        Assert.Contains("not valid before", (string?)(await AssertRefusedAsync(upgrade))["message"]);
        await using var frame = await Broker.ConnectAsync();
        await frame.SendAsync(new { type = "auth", id = "a", token = early });
        var error = await AssertRefusedAsync(frame);
        Assert.Equal("a", (string?)error["id"]);
        Assert.Contains("not valid before", (string?)error["message"]);
    }

    [Fact]
    public async Task With_auth_required_and_no_allowed_origins_a_foreign_origin_is_refused_and_the_brokers_own_accepted()
    {
        var refused = await WsClient.RefusedUpgradeAsync(Broker.WsUri, o =>
        {
            o.SetRequestHeader("Origin", "http://evil.example");
            o.SetRequestHeader("Authorization", "Bearer " + Tokens.Hs256("alice"));
        });
        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);

        var own = new Uri(Broker.HttpAddress).GetLeftPart(UriPartial.Authority);
        await using var page = await WsClient.ConnectAsync(Broker.WsUri, configure: o =>
        {
            o.SetRequestHeader("Origin", own);
            o.SetRequestHeader("Authorization", "Bearer " + Tokens.Hs256("alice"));
        });
        Assert.Equal("pong", await page.PingAsync("p"));
    }

    [Fact]
    public async Task A_token_for_another_audience_is_refused()
    {
        await using var client = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice", audience: "another-service"));
        await AssertRefusedAsync(client);
    }

    [Fact]
    public async Task A_token_with_a_forged_signature_is_refused()
    {
        await using var client = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice", secret: "not-the-secret-but-long-enough-to-sign-hs256"));
        await AssertRefusedAsync(client);
    }

    [Fact]
    public async Task An_unsigned_alg_none_token_is_refused()
    {
        await using var client = await Broker.ConnectAsync();
        await client.SendAsync(new { type = "auth", id = "a", token = Tokens.AlgNone("alice") });
        await AssertRefusedAsync(client);
    }

    [Fact]
    public async Task A_refreshed_token_keeps_the_connection_and_an_expired_one_closes_it()
    {
        // Two connections whose tokens expire in 4 s: one refreshes after token_expiring (2 s before exp), one does not.
        await using var refreshing = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice", TimeSpan.FromSeconds(4)));
        await using var lapsing = await Broker.ConnectWithTokenAsync(Tokens.Hs256("bob", TimeSpan.FromSeconds(4)));
        var notice = await refreshing.ExpectAsync("token_expiring");
        Assert.True((long)notice["exp"]! > 0);
        var authed = await refreshing.RequestAsync(new { type = "auth", id = "r", token = Tokens.Hs256("alice", TimeSpan.FromMinutes(10)) }, "r");
        Assert.Equal("authed", (string?)authed["type"]);

        Assert.Equal("token_expiring", (string?)(await lapsing.ExpectAsync("token_expiring"))["type"]);
        var (status, reason) = await lapsing.Closed.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, status);
        Assert.Equal("token_expired", reason);

        // The first token's exp has passed now (both were issued together): the refreshed connection still works.
        var pong = await refreshing.RequestAsync(new { type = "ping", id = "after" }, "after");
        Assert.Equal("pong", (string?)pong["type"]);
        Assert.Equal(WebSocketState.Open, refreshing.Socket.State);
    }

    [Fact]
    public async Task A_refresh_with_another_subject_is_refused()
    {
        await using var client = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice"));
        await client.SendAsync(new { type = "auth", id = "r", token = Tokens.Hs256("mallory") });
        await AssertRefusedAsync(client);
    }

    [Fact]
    public async Task Grants_with_sub_let_each_user_read_and_write_only_their_own_topics()
    {
        string[] own = ["user.{sub}.>"];
        await using var alice = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice", subTopics: own, pubTopics: own));
        await using var bob = await Broker.ConnectWithTokenAsync(Tokens.Hs256("bob", subTopics: own, pubTopics: own));
        await using var nobody = await Broker.ConnectWithTokenAsync(Tokens.Hs256("carol"));

        await alice.SubscribeAsync("user.alice.inbox", "s1");
        var refused = await alice.RequestAsync(new { type = "subscribe", id = "s2", topic = "user.bob.inbox" }, "s2");
        Assert.Equal("forbidden", (string?)refused["code"]);
        Assert.Contains("user.bob.inbox", (string?)refused["message"]);
        var ungranted = await nobody.RequestAsync(new { type = "subscribe", id = "s", topic = "user.carol.inbox" }, "s");
        Assert.Equal("forbidden", (string?)ungranted["code"]);
        var foreignPublish = await bob.RequestAsync(new { type = "publish", id = "p0", topic = "user.alice.inbox", data = "spoof" }, "p0");
        Assert.Equal("forbidden", (string?)foreignPublish["code"]);

        // Nothing of bob's topic reaches alice after the refusal: the only message she gets is her own.
        await bob.PublishAsync("user.bob.inbox", "for bob", "p1");
        await alice.SendAsync(new { type = "publish", id = "p2", topic = "user.alice.inbox", data = "for alice" });
        var frames = new List<JsonObject>();
        Assert.Equal("ack", (string?)(await alice.ReplyToAsync("p2", frames))["type"]);
        if (frames.Count == 0) frames.Add(await alice.ExpectAsync("message"));
        var message = Assert.Single(frames);
        Assert.Equal("user.alice.inbox", (string?)message["topic"]);
        Assert.Equal("pong", await alice.PingAsync("after"));
    }

    [Fact]
    public async Task Rs256_tokens_verify_against_the_jwks_file_and_keys_rotate_without_restart()
    {
        await using (var first = await Broker.ConnectWithTokenAsync(Tokens.Rs256(fixture.FirstKey, "rsa-user")))
            Assert.Equal("pong", await first.PingAsync("1"));

        var second = Tokens.NewRsaKey("k2");
        Tokens.WriteJwks(fixture.JwksPath, second); // k1 rotated out, k2 in
        await using (var rotated = await Broker.ConnectWithTokenAsync(Tokens.Rs256(second, "rsa-user")))
            Assert.Equal("pong", await rotated.PingAsync("2"));

        // The node re-reads the file when it changes: a token of the retired key is refused soon.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            await using var old = await Broker.ConnectWithTokenAsync(Tokens.Rs256(fixture.FirstKey, "rsa-user"));
            var answer = await old.PingAsync("3");
            if (answer != "pong")
            {
                Assert.Contains("unauthorized", answer);
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "a token signed by the rotated-out key was still accepted after 20 s");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task A_subject_cannot_take_over_another_subjects_session()
    {
        string[] own = ["user.{sub}.>"];
        await using var alice = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice", subTopics: own, pubTopics: own), "?session=shared-name");
        await alice.SubscribeAsync("user.alice.session", "s");
        await alice.SendAsync(new { type = "publish", id = "p", topic = "user.alice.session", data = new { n = 1 } });
        var frames = new List<JsonObject>();
        var pos = (string)(await alice.ReplyToAsync("p", frames))["pos"]!;
        if (frames.Count == 0) frames.Add(await alice.ExpectAsync("message"));
        Assert.Equal("message", (string?)Assert.Single(frames)["type"]);

        // Mallory's token grants alice's topics: only the session's scoping to the subject keeps her out.
        await using var mallory = await Broker.ConnectWithTokenAsync(Tokens.Hs256("mallory", subTopics: ["user.alice.>"], pubTopics: own), "?session=shared-name");
        // Her session of the same name is her own and empty: the first frame she gets is her ping's
        // pong (restored subscriptions would come before any reply), and her commit of alice's
        // topic is refused because her session is not subscribed to it, not for want of a grant.
        Assert.Equal("pong", await mallory.PingAsync("m"));
        await mallory.SendAsync(new { type = "commit", id = "c", topic = "user.alice.session", pos });
        var commit = await mallory.ExpectAsync("error");
        Assert.Equal("c", (string?)commit["id"]);
        Assert.Equal("not_found", (string?)commit["code"]);
        Assert.Contains("not subscribed", (string?)commit["message"]);
        // The grant is real: subscribing in her own session is allowed (from now, nothing of alice's past).
        await mallory.SendAsync(new { type = "subscribe", id = "s", topic = "user.alice.session" });
        Assert.Equal("s", (string?)(await mallory.ExpectAsync("subscribed"))["id"]);
        Assert.Equal("pong", await mallory.PingAsync("m2"));

        // Alice was not taken over: her next frame is her own pong, and her connection is open.
        Assert.Equal("pong", await alice.PingAsync("a"));
        Assert.Equal(WebSocketState.Open, alice.Socket.State);

        // Alice herself reconnecting takes her session over and gets it restored; mallory's stays hers.
        await using var again = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice", subTopics: own, pubTopics: own), "?session=shared-name");
        var restored = await again.ExpectAsync("subscribed");
        Assert.Equal("user.alice.session", (string?)restored["topic"]);
        var (_, reason) = await alice.Closed.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("session_taken_over", reason);
        Assert.Equal("pong", await mallory.PingAsync("m3"));
        Assert.Equal(WebSocketState.Open, mallory.Socket.State);
    }

    [Fact]
    public async Task Restored_session_subscriptions_are_checked_against_the_current_token()
    {
        await using (var granted = await Broker.ConnectWithTokenAsync(Tokens.Hs256("dave", subTopics: ["user.dave.>"]), "?session=dave-s"))
            await granted.SubscribeAsync("user.dave.private", "s");
        await using var narrowed = await Broker.ConnectWithTokenAsync(Tokens.Hs256("dave", subTopics: ["user.dave.public"]), "?session=dave-s");
        var refused = await narrowed.ExpectAsync("error");
        Assert.Equal("forbidden", (string?)refused["code"]);
        Assert.Null(refused["id"]);
        Assert.Equal("pong", (string?)(await narrowed.RequestAsync(new { type = "ping", id = "p" }, "p"))["type"]);
    }

    [Fact]
    public async Task A_client_identity_of_one_subject_does_not_collide_with_anothers_retry_window()
    {
        await using var alice = await Broker.ConnectWithTokenAsync(Tokens.Hs256("alice"), "?client=device-1");
        await using var mallory = await Broker.ConnectWithTokenAsync(Tokens.Hs256("mallory"), "?client=device-1");
        await using var reader = await Broker.ConnectWithTokenAsync(Tokens.Hs256("reader"));
        await reader.SubscribeAsync("auth.dedup", "s");
        var forged = await mallory.PublishAsync("auth.dedup", "forged", "1");
        var real = await alice.PublishAsync("auth.dedup", "real", "1");
        Assert.NotEqual(forged, real); // alice's publish was written, not answered with mallory's ack
        var data = new[] { (string?)(await reader.ExpectAsync("message"))["data"], (string?)(await reader.ExpectAsync("message"))["data"] };
        Assert.Contains("real", data);
        Assert.Contains("forged", data);
    }
}
