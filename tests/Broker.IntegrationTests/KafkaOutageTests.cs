using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

/// <summary>
/// The Kafka-protocol log becomes unreachable (the embedded mock broker is set down) and comes
/// back: publishes are refused with <c>unavailable</c> in time, subscribers stay connected and
/// resume by themselves, the outage is logged once.
/// </summary>
public sealed class KafkaOutageTests : IAsyncLifetime
{
    private TestBroker _broker = null!;
    private LogCapture _log = null!;

    public async Task InitializeAsync()
    {
        _broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.kafka.produce-timeout"] = "2s",
            ["broker.topics.answer-margin"] = "1s", // a publish is written only while produce-timeout + this are left of request-timeout
            ["broker.kafka.query-timeout"] = "2s",
            // A publish is written only while produce-timeout + answer-margin are left: 3 s for the
            // topic's writer to start and take it.
            ["broker.websocket.request-timeout"] = "6s",
        });
        _log = LogCapture.Attach(_broker);
    }

    public async Task DisposeAsync()
    {
        // Back up, so that shutting down does not wait for an unreachable log.
        try { Cluster.SetBrokerUp(); } catch (KafkaException) { }
        await _broker.DisposeAsync();
    }

    private MockKafkaCluster Cluster => _broker.App.Services.GetRequiredService<MockKafkaCluster>();

    private const string Feed = "Broker.Core.Fanout.FeedHub";

    [Fact]
    public async Task Publishes_are_refused_while_the_log_is_down_and_subscribers_resume_without_gap_or_duplicate_when_it_returns()
    {
        const string topic = "outage.resume";
        await using var sub = await _broker.ConnectAsync();
        await using var pub = await _broker.ConnectAsync();
        await sub.SubscribeAsync(topic, "s");
        var before = await pub.PublishAsync(topic, new { seq = 0 }, "p0");
        Assert.Equal(before, (string?)(await sub.ExpectAsync("message"))["pos"]);

        Cluster.SetBrokerDown();

        // Refused, not acknowledged; the connection stays usable.
        var refused = await pub.RequestAsync(new { type = "publish", id = "p1", topic, data = new { seq = 1 } }, "p1");
        Assert.Equal("error", (string?)refused["type"]);
        Assert.Equal("unavailable", (string?)refused["code"]);
        var refused2 = await pub.RequestAsync(new { type = "publish", id = "p2", topic, data = new { seq = 2 } }, "p2");
        Assert.Equal("unavailable", (string?)refused2["code"]);
        // The outage reached the feed reader too (it is logged once, below).
        await Wait.UntilAsync(() => _log.Count(Feed, "the log is unreachable") > 0, "the feed reader noticed the outage");

        Cluster.SetBrokerUp();

        // The client retries its refused publishes until the log takes them.
        var p1 = await RetryPublish(pub, topic, 1, "p1");
        var p2 = await RetryPublish(pub, topic, 2, "p2");
        // An external producer writes after them.
        using (var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = _broker.KafkaBootstrap, Acks = Acks.All }).Build())
            await producer.ProduceAsync(topic, new Message<string?, string> { Value = "{\"seq\":3}" }).WaitAsync(TimeSpan.FromSeconds(30));

        // The subscriber, still connected, receives everything after what it had, once, in order.
        var m1 = await sub.ExpectAsync("message");
        Assert.Equal(1, (int)m1["data"]!["seq"]!);
        Assert.Equal(p1, (string?)m1["pos"]);
        var m2 = await sub.ExpectAsync("message");
        Assert.Equal(2, (int)m2["data"]!["seq"]!);
        Assert.Equal(p2, (string?)m2["pos"]);
        Assert.Equal(3, (int)(await sub.ExpectAsync("message"))["data"]!["seq"]!);
        await sub.SendAsync(new { type = "ping", id = "end" });
        Assert.Equal("pong", (string?)(await sub.ReceiveAsync())["type"]);
        Assert.Equal(WebSocketState.Open, sub.Socket.State);

        // One line for the outage, one for its end.
        await Wait.UntilAsync(() => _log.Count(Feed, "reachable again") > 0, "the recovery was logged");
        Assert.Equal(1, _log.Count(Feed, "the log is unreachable"));
        Assert.Equal(1, _log.Count(Feed, "reachable again"));
    }

    [Fact]
    public async Task A_subscribe_while_the_log_is_down_is_answered_unavailable_and_works_once_it_returns()
    {
        const string topic = "outage.subscribe";
        await using var client = await _broker.ConnectAsync();
        await client.PublishAsync(topic, new { seq = 0 }, "p0"); // the topic exists

        Cluster.SetBrokerDown();
        var refused = await client.RequestAsync(new { type = "subscribe", id = "s1", topic, from = "earliest" }, "s1");
        Assert.Equal("unavailable", (string?)refused["code"]);
        Cluster.SetBrokerUp();

        var deadline = Stopwatch.StartNew();
        JsonObject reply;
        while (true)
        {
            reply = await client.RequestAsync(new { type = "subscribe", id = "s2", topic, from = "earliest" }, "s2");
            if ((string?)reply["type"] == "subscribed" || deadline.Elapsed > TimeSpan.FromSeconds(30)) break;
        }
        Assert.Equal("subscribed", (string?)reply["type"]);
        Assert.Equal(0, (int)(await client.ExpectAsync("message"))["data"]!["seq"]!);
    }

    private static async Task<string> RetryPublish(WsClient pub, string topic, int seq, string id)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var reply = await pub.RequestAsync(new { type = "publish", id, topic, data = new { seq } }, id);
            if ((string?)reply["type"] == "ack") return (string)reply["pos"]!;
            Assert.Equal("unavailable", (string?)reply["code"]);
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), "the log did not come back in time");
        }
    }
}
