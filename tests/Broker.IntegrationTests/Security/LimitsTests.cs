using System.Net;
using System.Net.WebSockets;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests.Security;

/// <summary>An anonymous loopback node with small limits, an origin list and a topic prefix long enough to test Kafka's name length.</summary>
public sealed class LimitsFixture : IAsyncLifetime
{
    public TestBroker Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await TestBroker.StartAsync(new Dictionary<string, string>
    {
        ["broker.limits.connections-per-ip"] = "3",
        ["broker.limits.publishes-per-second"] = "5",
    }, """broker.websocket.allowed-origins = ["https://app.example"]""");

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

public sealed class LimitsTests(LimitsFixture fixture) : IClassFixture<LimitsFixture>
{
    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task A_publish_flood_is_answered_rate_limited_while_the_connection_and_other_clients_go_on()
    {
        // One test at a time uses connections here (the per-address cap is 3).
        await using var flooder = await Broker.ConnectAsync();
        await using var other = await Broker.ConnectAsync();
        for (var i = 0; i < 20; i++) await flooder.SendAsync(new { type = "publish", id = $"f{i}", topic = "limits.flood", data = i });
        var replies = new List<System.Text.Json.Nodes.JsonObject>();
        while (replies.Count < 20) replies.Add(await flooder.ReceiveAsync()); // errors come at once, acks when written: any order
        var limited = replies.Where(r => (string?)r["code"] == "rate_limited").ToList();
        Assert.NotEmpty(limited);
        Assert.All(limited, r => Assert.True((long)r["retry_after_ms"]! > 0));
        Assert.Contains(replies, r => (string?)r["type"] == "ack");

        // Another client of the same node is not slowed by it, and the flooder's connection is still open.
        await other.PublishAsync("limits.flood", "other", "o1");
        Assert.Equal("pong", (string?)(await flooder.RequestAsync(new { type = "ping", id = "still" }, "still"))["type"]);
        Assert.Equal(WebSocketState.Open, flooder.Socket.State);
    }

    [Fact]
    public async Task Connections_over_the_per_address_cap_get_503_with_retry_after()
    {
        // Connections of other tests may be closing: take what is left of the cap, then one more is refused.
        var (open, refused) = await WsClient.ConnectUntilRefusedAsync(_ => WsClient.TryConnectAsync(Broker.WsUri), 10);
        try
        {
            Assert.NotNull(refused);
            Assert.InRange(open.Count, 1, 3);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
            Assert.True(refused.RetryAfterSeconds >= 1);
        }
        finally
        {
            foreach (var c in open) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_foreign_origin_is_refused_and_a_listed_one_accepted()
    {
        var refused = await Assert.ThrowsAsync<WebSocketException>(() =>
            WsClient.ConnectAsync(Broker.WsUri, configure: o => o.SetRequestHeader("Origin", "http://evil.example")));
        Assert.Contains("403", refused.Message);
        await using var listed = await WsClient.ConnectAsync(Broker.WsUri, configure: o => o.SetRequestHeader("Origin", "https://app.example"));
        Assert.Equal("pong", (string?)(await listed.RequestAsync(new { type = "ping", id = "p" }, "p"))["type"]);
    }

    [Theory]
    [InlineData("__consumer_offsets")]
    [InlineData("__transaction_state")]
    [InlineData("_schemas")]
    [InlineData("connect-configs")]
    public async Task Kafka_internal_and_denied_topics_are_forbidden(string topic)
    {
        await using var client = await Broker.ConnectAsync();
        var sub = await client.RequestAsync(new { type = "subscribe", id = "s", topic }, "s");
        Assert.Equal("forbidden", (string?)sub["code"]);
        var pub = await client.RequestAsync(new { type = "publish", id = "p", topic, data = 1 }, "p");
        Assert.Equal("forbidden", (string?)pub["code"]);
    }

    [Fact]
    public async Task A_name_that_collides_in_kafka_with_an_existing_topic_is_refused()
    {
        await using var client = await Broker.ConnectAsync();
        await client.PublishAsync("limits.collide", 1, "p1");
        var second = await client.RequestAsync(new { type = "subscribe", id = "s", topic = "limits_collide" }, "s");
        Assert.Equal("bad_request", (string?)second["code"]);
        Assert.Contains("collides", (string?)second["message"]);
    }
}

/// <summary>A node whose Kafka topic prefix makes a 200-character broker topic longer than Kafka's 249.</summary>
public sealed class LongPrefixFixture() : ConfiguredBrokerFixture(new Dictionary<string, string>
{
    ["broker.kafka.topic-prefix"] = new string('p', 60) + ".",
});

public sealed class KafkaNameLengthTests(LongPrefixFixture fixture) : IClassFixture<LongPrefixFixture>
{
    [Fact]
    public async Task A_topic_whose_kafka_name_exceeds_249_characters_is_refused_with_a_clear_error()
    {
        await using var client = await fixture.Broker.ConnectAsync();
        var topic = new string('t', 200);
        var reply = await client.RequestAsync(new { type = "publish", id = "p", topic, data = 1 }, "p");
        Assert.Equal("bad_request", (string?)reply["code"]);
        Assert.Contains("249", (string?)reply["message"]);
    }
}
