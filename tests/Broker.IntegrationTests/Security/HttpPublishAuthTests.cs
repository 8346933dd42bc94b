using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.Client;
using Broker.IntegrationTests.Client;
using Broker.IntegrationTests.Infrastructure;
using Broker.Server.Publish;

namespace Broker.IntegrationTests.Security;

/// <summary>
/// A node with broker.auth.mode = required (HS256, audience checked, no clock skew): topics under
/// user.&gt; writable only with a grant, anything else by any valid token; each subject may publish 10
/// messages a second; browsers only from https://app.example.
/// </summary>
public sealed class HttpPublishAuthFixture() : ConfiguredBrokerFixture(new Dictionary<string, string>
{
    ["broker.auth.mode"] = "required",
    ["broker.auth.hs256-secret"] = Tokens.Secret,
    ["broker.auth.audience"] = Tokens.Audience,
    ["broker.auth.clock-skew"] = "0s",
    ["broker.limits.subject-publishes-per-second"] = "10",
}, """
    broker.namespaces = [ { pattern = "user.>", publish = granted } ]
    broker.websocket.allowed-origins = ["https://app.example"]
    """);

/// <summary>
/// POST /v1/publish under the WebSocket security model: the bearer token (401), the grants per item
/// (403), the subject's publish rate (429), the origin policy (403), and http:&lt;sub&gt; as the client
/// of what is written. Every refusal is shown to write nothing: a granted publish to the same topic
/// afterwards is the topic's only record.
/// </summary>
public sealed class HttpPublishAuthTests(HttpPublishAuthFixture fixture) : IClassFixture<HttpPublishAuthFixture>
{
    private TestBroker Broker => fixture.Broker;

    /// <summary>A token of <paramref name="sub"/> that may publish to its own user.&lt;sub&gt;.&gt; topics.</summary>
    private static string Granted(string sub) => Tokens.Hs256(sub, pubTopics: ["user.{sub}.>"]);

    private static string One(string topic, object data) => new JsonObject { ["topic"] = topic, ["data"] = JsonSerializer.SerializeToNode(data) }.ToJsonString();

    /// <summary>Publishes <paramref name="data"/> with a granted token, then reads the topic back: the refused requests before it must not be there.</summary>
    private async Task<List<LoggedRecord>> PublishGrantedAndReadBack(string sub, string topic, string data)
    {
        var ok = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, data), token: Granted(sub));
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        return LogReadBack.All(Broker.KafkaBootstrap, topic);
    }

    [Fact]
    public async Task A_request_without_a_token_is_401_with_a_bearer_challenge_and_writes_nothing()
    {
        const string topic = "user.nobody.inbox";
        var refused = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "anonymous"));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Equal("unauthorized", (string?)refused.Body["code"]);
        Assert.Equal("Bearer", refused.WwwAuthenticate);

        Assert.Equal(["\"granted\""], (await PublishGrantedAndReadBack("nobody", topic, "granted")).Select(r => r.Text));
    }

    [Fact]
    public async Task An_authorization_header_of_another_scheme_is_401_with_a_bearer_challenge_and_writes_nothing()
    {
        const string topic = "user.basic.inbox";
        var refused = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "basic"), token: Granted("basic"), scheme: "Basic");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Equal("unauthorized", (string?)refused.Body["code"]);
        Assert.Equal("Bearer", refused.WwwAuthenticate);

        Assert.Equal(["\"granted\""], (await PublishGrantedAndReadBack("basic", topic, "granted")).Select(r => r.Text));
    }

    [Theory]
    [InlineData("bad-signature", "signature")]
    [InlineData("expired", "expired")]
    [InlineData("alg-none", "")]
    [InlineData("wrong-audience", "audience")]
    [InlineData("not-a-jwt", "")]
    public async Task A_token_that_does_not_validate_is_401_invalid_token(string kind, string message)
    {
        var topic = $"user.mallory-{kind}.inbox";
        var sub = $"mallory-{kind}";
        var token = kind switch
        {
            "bad-signature" => Tokens.Hs256(sub, pubTopics: ["user.{sub}.>"], secret: "another-secret-of-at-least-thirty-two-bytes"),
            "expired" => Tokens.Hs256(sub, TimeSpan.FromMinutes(-5), pubTopics: ["user.{sub}.>"]),
            "alg-none" => Tokens.AlgNone(sub),
            "wrong-audience" => Tokens.Hs256(sub, pubTopics: ["user.{sub}.>"], audience: "someone-else"),
            _ => "not.a.jwt",
        };
        var refused = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, kind), token: token);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Equal("unauthorized", (string?)refused.Body["code"]);
        Assert.Contains(message, (string?)refused.Body["message"]);
        Assert.Equal("Bearer error=\"invalid_token\"", refused.WwwAuthenticate);

        Assert.Equal(["\"granted\""], (await PublishGrantedAndReadBack(sub, topic, "granted")).Select(r => r.Text));
    }

    [Fact]
    public async Task A_granted_publish_is_acknowledged_and_written_as_client_http_sub()
    {
        const string topic = "user.alice.orders";
        var key = "order-" + Guid.NewGuid().ToString("N");
        var ack = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, new { n = 1 }), key, Granted("alice"));
        Assert.Equal(HttpStatusCode.OK, ack.Status);
        Assert.Equal("ack", (string?)ack.Body["type"]);

        var record = Assert.Single(LogReadBack.All(Broker.KafkaBootstrap, topic));
        Assert.Equal((string?)ack.Body["pos"], record.Pos);
        Assert.Equal("http:alice", record.Headers["broker-client"]);
        Assert.Equal(HttpPublishEndpoint.ClientPrefix + "alice", record.Headers["broker-client"]);
        Assert.Equal(key, record.Headers["broker-id"]);
    }

    [Fact]
    public async Task An_idempotency_key_is_remembered_per_subject()
    {
        // A topic any valid token may write (no namespace: default-access authenticated).
        const string topic = "shared.http-keys";
        var key = "same-" + Guid.NewGuid().ToString("N");
        var alice = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "alice"), key, Tokens.Hs256("alice"));
        var bob = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "bob"), key, Tokens.Hs256("bob"));
        var aliceAgain = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "alice"), key, Tokens.Hs256("alice"));
        Assert.Equal(HttpStatusCode.OK, bob.Status);
        Assert.NotEqual((string?)alice.Body["pos"], (string?)bob.Body["pos"]);
        Assert.Equal((string?)alice.Body["pos"], (string?)aliceAgain.Body["pos"]);

        var log = LogReadBack.All(Broker.KafkaBootstrap, topic);
        Assert.Equal(["http:alice", "http:bob"], log.Select(r => r.Headers["broker-client"]));
    }

    [Fact]
    public async Task A_valid_token_without_the_grant_is_403_and_writes_nothing()
    {
        const string topic = "user.carol.private";
        var refused = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "from dave"), token: Granted("dave"));
        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal("forbidden", (string?)refused.Body["code"]);
        Assert.Contains("does not grant publish to user.carol.private", (string?)refused.Body["message"]);

        Assert.Equal(["\"granted\""], (await PublishGrantedAndReadBack("carol", topic, "granted")).Select(r => r.Text));
    }

    [Fact]
    public async Task A_batch_is_answered_per_item_with_ack_or_forbidden()
    {
        var body = new JsonArray(
            new JsonObject { ["topic"] = "user.erin.batch", ["data"] = 1 },
            new JsonObject { ["topic"] = "user.frank.batch", ["data"] = 2 },
            new JsonObject { ["topic"] = "user.erin.batch", ["data"] = 3 });
        var key = "batch-" + Guid.NewGuid().ToString("N"); // the client header is written with a request id
        var response = await HttpPublishTests.PostAsync(Broker.HttpAddress, body.ToJsonString(), key, Granted("erin"));
        Assert.Equal(HttpStatusCode.OK, response.Status);
        var items = response.Body.AsArray();
        Assert.Equal(["ack", "forbidden", "ack"], items.Select(i => (string?)i!["type"] == "ack" ? "ack" : (string?)i["code"]));

        var log = LogReadBack.All(Broker.KafkaBootstrap, "user.erin.batch");
        Assert.Equal(["1", "3"], log.Select(r => r.Text));
        Assert.All(log, r => Assert.Equal("http:erin", r.Headers["broker-client"]));
        Assert.Equal([$"{key}#0", $"{key}#2"], log.Select(r => r.Headers["broker-id"]));
        Assert.Equal(["\"granted\""], (await PublishGrantedAndReadBack("frank", "user.frank.batch", "granted")).Select(r => r.Text));
    }

    [Fact]
    public async Task Over_the_subjects_publish_rate_a_batch_gets_rate_limited_items_and_a_single_publish_429_with_retry_after()
    {
        const string topic = "user.grace.flood";
        var token = Granted("grace");
        var batch = new JsonArray(Enumerable.Range(0, 30).Select(i => (JsonNode)new JsonObject { ["topic"] = topic, ["data"] = $"b{i}" }).ToArray());
        var flood = await HttpPublishTests.PostAsync(Broker.HttpAddress, batch.ToJsonString(), token: token);
        Assert.Equal(HttpStatusCode.OK, flood.Status);
        var items = flood.Body.AsArray().Select(i => i!.AsObject()).ToList();
        var limited = items.Where(i => (string?)i["code"] == "rate_limited").ToList();
        Assert.NotEmpty(limited); // 10 a second: at most 10 plus what refills during the request pass
        Assert.All(limited, i => Assert.True((long)i["retry_after_ms"]! > 0));
        var acked = Enumerable.Range(0, 30).Where(i => (string?)items[i]["type"] == "ack").Select(i => $"\"b{i}\"").ToList();
        Assert.NotEmpty(acked);

        // Single publishes until one is refused (the bucket refills 1 per 100 ms; the batch emptied it).
        HttpPublishResponse? refused = null;
        string? refusedData = null;
        for (var i = 0; i < 100 && refused is null; i++)
        {
            var response = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, $"s{i}"), token: token);
            if (response.Status == HttpStatusCode.OK) acked.Add($"\"s{i}\"");
            else
            {
                refused = response;
                refusedData = $"\"s{i}\"";
            }
        }
        Assert.NotNull(refused);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.Status);
        Assert.Equal("rate_limited", (string?)refused.Body["code"]);
        Assert.True((long)refused.Body["retry_after_ms"]! > 0);
        Assert.True(refused.RetryAfter >= TimeSpan.FromSeconds(1));

        // Exactly the acknowledged ones were written, in order; nothing refused.
        var log = LogReadBack.All(Broker.KafkaBootstrap, topic).Select(r => r.Text).ToList();
        Assert.Equal(acked, log);
        Assert.DoesNotContain(refusedData, log);
    }

    [Fact]
    public async Task A_foreign_origin_is_403_and_a_listed_one_accepted()
    {
        const string topic = "user.heidi.origin";
        var foreign = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "foreign"), token: Granted("heidi"), origin: "http://evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, foreign.Status);
        Assert.Equal("forbidden", (string?)foreign.Body["code"]);
        Assert.Contains("allowed-origins", (string?)foreign.Body["message"]);

        var listed = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "listed"), token: Granted("heidi"), origin: "https://app.example");
        Assert.Equal(HttpStatusCode.OK, listed.Status);
        Assert.Equal(["\"listed\""], LogReadBack.All(Broker.KafkaBootstrap, topic).Select(r => r.Text));
    }

    [Fact]
    public async Task A_token_in_the_query_string_is_refused()
    {
        const string topic = "user.ivan.query";
        var refused = await HttpPublishTests.PostAsync(Broker.HttpAddress, One(topic, "query"), query: "?token=" + Granted("ivan"));
        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Contains("Authorization: Bearer", (string?)refused.Body["message"]);

        Assert.Equal(["\"granted\""], (await PublishGrantedAndReadBack("ivan", topic, "granted")).Select(r => r.Text));
    }

    [Fact]
    public async Task BrokerHttpPublisher_sends_the_token_of_its_provider()
    {
        const string topic = "user.judy.client";
        var asked = 0;
        using var publisher = new BrokerHttpPublisher(new Uri(Broker.HttpAddress), new BrokerHttpPublisherOptions
        {
            TokenProvider = _ =>
            {
                Interlocked.Increment(ref asked);
                return ValueTask.FromResult(Granted("judy"));
            },
        });
        var ack = await publisher.PublishAsync(topic, "1"u8.ToArray());
        var forbidden = await Assert.ThrowsAsync<BrokerErrorException>(() => publisher.PublishAsync("user.other.client", "2"u8.ToArray()));
        Assert.Equal(BrokerErrorCodes.Forbidden, forbidden.Code);
        Assert.Equal(2, asked);

        var record = Assert.Single(LogReadBack.All(Broker.KafkaBootstrap, topic));
        Assert.Equal(ack.Pos, record.Pos);
        Assert.Equal("http:judy", record.Headers["broker-client"]);

        using var anonymous = new BrokerHttpPublisher(new Uri(Broker.HttpAddress), new BrokerHttpPublisherOptions { MaxAttempts = 1 });
        var unauthorized = await Assert.ThrowsAsync<BrokerErrorException>(() => anonymous.PublishAsync(topic, "3"u8.ToArray()));
        Assert.Equal(BrokerErrorCodes.Unauthorized, unauthorized.Code);
        Assert.Equal(401, unauthorized.HttpStatus);
    }
}
