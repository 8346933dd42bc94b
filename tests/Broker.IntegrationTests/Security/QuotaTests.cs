using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests.Security;

/// <summary>
/// A node with broker.auth.mode = required (HS256), every broker.limits cap small enough to reach in a
/// test (12 connections on the node, 3 per subject, 1 durable session per subject, 3 subscribes a
/// second and 2,000 publish bytes a second per connection, publishes of at most 1,000 bytes, 2 topic
/// creations a minute per subject;
/// no per-address cap, as every test client comes from 127.0.0.1), no allowed origins, and its admin
/// API on loopback without a token; its log captured at info. Each test uses subjects of its own.
/// </summary>
public sealed class QuotaFixture : IAsyncLifetime
{
    public const int NodeCap = 12;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "broker-quota-" + Guid.NewGuid().ToString("N"));

    public TestBroker Broker { get; private set; } = null!;
    public LogCapture Log { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        Broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.auth.mode"] = "required",
            ["broker.auth.hs256-secret"] = Tokens.Secret,
            ["broker.auth.audience"] = Tokens.Audience,
            ["broker.limits.connections-per-node"] = NodeCap.ToString(),
            ["broker.limits.connections-per-subject"] = "3",
            ["broker.limits.connections-per-ip"] = "0",
            ["broker.limits.sessions-per-subject"] = "1",
            ["broker.limits.subscribes-per-second"] = "3",
            ["broker.limits.publish-bytes-per-second"] = "2000",
            ["broker.websocket.max-data-bytes"] = "1000", // a byte rate is at least the largest publish
            ["broker.limits.topic-creations-per-minute"] = "2",
            ["broker.logging.level"] = "info", // admin actions are logged at info
            ["broker.persistence.sqlite.path"] = Path.Combine(_dir, "broker.db"),
        });
        Log = LogCapture.Attach(Broker);
    }

    public async Task DisposeAsync()
    {
        if (Broker is not null) await Broker.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { /* best effort */ }
    }
}

/// <summary>
/// Each limit of broker.limits reached with real clients: over a rate the request is answered
/// <c>error</c> <c>rate_limited</c> with <c>retry_after_ms</c>, the connection stays open and other
/// clients go on; over a connection cap the upgrade gets 503 with <c>Retry-After</c>, or, when the
/// subject is known only at its first-frame <c>auth</c>, <c>rate_limited</c> and close 1013
/// <c>too_many_connections</c>.
/// </summary>
public sealed class QuotaTests(QuotaFixture fixture) : IClassFixture<QuotaFixture>
{
    private const WebSocketCloseStatus TryAgainLater = (WebSocketCloseStatus)1013;

    private TestBroker Broker => fixture.Broker;

    private Task<WsClient> ConnectAsync(string sub, string query = "") => Broker.ConnectWithTokenAsync(Tokens.Hs256(sub), query);

    private static Action<ClientWebSocketOptions> Bearer(string sub) => o => o.SetRequestHeader("Authorization", "Bearer " + Tokens.Hs256(sub));

    /// <summary>The replies to the requests <paramref name="ids"/> (frames of other requests and messages are skipped), in the order they came.</summary>
    private static async Task<List<JsonObject>> RepliesAsync(WsClient client, IReadOnlyCollection<string> ids)
    {
        var replies = new List<JsonObject>();
        while (replies.Count < ids.Count)
        {
            var frame = await client.ReceiveAsync();
            if ((string?)frame["id"] is { } id && ids.Contains(id)) replies.Add(frame);
        }
        return replies;
    }

    private static void AssertRateLimited(JsonObject reply, string what)
    {
        Assert.Equal("error", (string?)reply["type"]);
        Assert.Equal("rate_limited", (string?)reply["code"]);
        Assert.Contains(what, (string?)reply["message"]);
        Assert.True((long)reply["retry_after_ms"]! > 0, reply.ToJsonString());
    }

    /// <summary>A connection refused by a cap found at its first-frame auth: rate_limited with the frame's id and retry_after_ms, then 1013.</summary>
    private static async Task<JsonObject> AssertTooManyAtAuthAsync(WsClient client, string sub)
    {
        await client.SendAsync(new { type = "auth", id = "a", token = Tokens.Hs256(sub) });
        var error = await client.ExpectErrorThenCloseAsync("rate_limited", TryAgainLater, "too_many_connections");
        Assert.Equal("a", (string?)error["id"]);
        Assert.True((long)error["retry_after_ms"]! > 0, error.ToJsonString());
        return error;
    }

    [Fact]
    public async Task Subscribes_over_the_per_connection_rate_are_rate_limited_while_the_connection_and_other_clients_go_on()
    {
        const string topic = "quota.subscribes";
        await using var flooder = await ConnectAsync("sub-flooder");
        await using var other = await ConnectAsync("sub-other");
        var ids = Enumerable.Range(0, 20).Select(i => $"s{i}").ToList();
        foreach (var id in ids) await flooder.SendAsync(new { type = "subscribe", id, topic }); // the first creates the topic; the rest are repeats, counted all the same

        var replies = await RepliesAsync(flooder, ids);
        Assert.Equal(ids, replies.Select(r => (string?)r["id"])); // subscribes are answered in order
        Assert.All(replies.Take(3), r => Assert.Equal("subscribed", (string?)r["type"])); // a full bucket: 3 at once
        var limited = replies.Where(r => (string?)r["type"] == "error").ToList();
        Assert.NotEmpty(limited);
        Assert.All(limited, r => AssertRateLimited(r, "subscribes on this connection"));

        // Another client subscribes at once; the flooder's connection is open, and after the hint a subscribe passes again.
        await other.SubscribeAsync(topic, "o");
        Assert.Equal("pong", await flooder.PingAsync("still"));
        await Task.Delay(TimeSpan.FromMilliseconds(limited.Max(r => (long)r["retry_after_ms"]!))); // the hint is the contract under test
        Assert.Equal("subscribed", (string?)(await flooder.RequestAsync(new { type = "subscribe", id = "later", topic }, "later"))["type"]);
        Assert.Equal(WebSocketState.Open, flooder.Socket.State);
    }

    [Fact]
    public async Task Publish_bytes_over_the_per_connection_rate_are_rate_limited_while_the_connection_and_other_clients_go_on()
    {
        const string topic = "quota.bytes";
        var data = new string('x', 600); // 602 bytes of JSON: three fit in a second's 2,000
        await using var flooder = await ConnectAsync("bytes-flooder");
        await using var other = await ConnectAsync("bytes-other");
        await flooder.PublishAsync(topic, "create", "p-create");
        var ids = Enumerable.Range(0, 12).Select(i => $"p{i}").ToList();
        foreach (var id in ids) await flooder.SendAsync(new { type = "publish", id, topic, data });

        var replies = await RepliesAsync(flooder, ids); // errors come at once, acks when written: any order
        var limited = replies.Where(r => (string?)r["type"] == "error").ToList();
        Assert.NotEmpty(limited);
        Assert.All(limited, r => AssertRateLimited(r, "publish bytes on this connection"));
        Assert.Contains(replies, r => (string?)r["type"] == "ack");

        await other.PublishAsync(topic, data, "o1");
        Assert.Equal("pong", await flooder.PingAsync("still"));
        Assert.Equal(WebSocketState.Open, flooder.Socket.State);
    }

    [Fact]
    public async Task Topic_creations_over_the_subjects_quota_are_rate_limited_while_existing_topics_and_other_subjects_go_on()
    {
        await using var creator = await ConnectAsync("creator");
        await using var other = await ConnectAsync("creator-other");
        await creator.PublishAsync("quota.create.1", 1, "c1");
        await creator.PublishAsync("quota.create.2", 2, "c2");

        AssertRateLimited(await creator.RequestAsync(new { type = "publish", id = "c3", topic = "quota.create.3", data = 3 }, "c3"), "topic creations of this subject");
        AssertRateLimited(await creator.RequestAsync(new { type = "subscribe", id = "c4", topic = "quota.create.4" }, "c4"), "topic creations of this subject");

        // Topics that exist cost nothing; another subject creates the refused one.
        await creator.PublishAsync("quota.create.1", 4, "c5");
        await creator.SubscribeAsync("quota.create.2", "c6");
        await other.PublishAsync("quota.create.3", 5, "o1");
        Assert.Equal("pong", await creator.PingAsync("still"));
        Assert.Equal(WebSocketState.Open, creator.Socket.State);
    }

    [Fact]
    public async Task A_durable_session_over_the_subjects_cap_is_refused_while_its_other_session_and_other_subjects_go_on()
    {
        await using var first = await ConnectAsync("sess-user", "?session=one");
        Assert.Equal("pong", await first.PingAsync("1"));
        await using var plain = await ConnectAsync("sess-user"); // a connection without a session is not counted
        Assert.Equal("pong", await plain.PingAsync("1"));

        // The token on the upgrade: refused before the upgrade.
        var refused = await WsClient.RefusedUpgradeAsync(new Uri(Broker.WsUri + "?session=two"), Bearer("sess-user"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.True(refused.RetryAfterSeconds >= 1);
        // The token in the first frame (a browser): rate_limited, then 1013.
        await using var browser = await Broker.ConnectAsync("?session=two");
        Assert.Contains("durable-session", (string?)(await AssertTooManyAtAuthAsync(browser, "sess-user"))["message"]);

        await using var otherSubject = await ConnectAsync("sess-other", "?session=two");
        Assert.Equal("pong", await otherSubject.PingAsync("1"));
        Assert.Equal("pong", await first.PingAsync("2"));
        Assert.Equal(WebSocketState.Open, first.Socket.State);
    }

    [Fact]
    public async Task Connections_over_the_subjects_cap_are_refused_with_503_or_close_1013_while_its_others_and_other_subjects_go_on()
    {
        var open = new List<WsClient>();
        try
        {
            for (var i = 0; i < 3; i++) open.Add(await ConnectAsync("conn-user"));

            var refused = await WsClient.RefusedUpgradeAsync(Broker.WsUri, Bearer("conn-user"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
            Assert.True(refused.RetryAfterSeconds >= 1);
            await using var browser = await Broker.ConnectAsync();
            Assert.Contains("connections-per-subject", (string?)(await AssertTooManyAtAuthAsync(browser, "conn-user"))["message"]);

            await using var other = await ConnectAsync("conn-other");
            Assert.Equal("pong", await other.PingAsync("1"));
            foreach (var c in open) Assert.Equal("pong", await c.PingAsync("2"));
        }
        finally
        {
            foreach (var c in open) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Connections_over_the_nodes_cap_get_503_with_retry_after()
    {
        // Connections of other tests may still be closing: take what is left of the cap, then one more is refused.
        var (open, refused) = await WsClient.ConnectUntilRefusedAsync(i => WsClient.TryConnectAsync(Broker.WsUri, Bearer($"node-cap-{i}")), QuotaFixture.NodeCap + 5);
        try
        {
            Assert.NotNull(refused);
            Assert.InRange(open.Count, 1, QuotaFixture.NodeCap);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
            Assert.True(refused.RetryAfterSeconds >= 1);
            Assert.Equal("pong", await open[0].PingAsync("admitted"));
        }
        finally
        {
            foreach (var c in open) await c.DisposeAsync();
        }
        // Closed connections give their place back (and the next test of this node has its connections).
        await Wait.UntilAsync(async () =>
        {
            var (client, _) = await WsClient.TryConnectAsync(Broker.WsUri, Bearer("node-cap-after"));
            if (client is null) return false;
            await client.DisposeAsync();
            return true;
        }, "a connection is admitted again after the others closed");
    }

    [Fact]
    public async Task An_admin_action_on_a_loopback_admin_api_without_a_token_is_logged_with_who_and_what()
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync(Broker.AdminAddress + "/admin/cluster/down-unreachable", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Wait.UntilAsync(() => fixture.Log.Count("Broker.Admin", "Admin API: POST /admin/cluster/down-unreachable by no token (loopback) from 127.0.0.1") == 1,
            "the admin action is logged with the method, the path and 'no token (loopback)'", TimeSpan.FromSeconds(10));
    }
}
