using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

public sealed class PubSubTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task Publish_is_acknowledged_and_delivered_to_a_subscriber_on_another_connection()
    {
        await using var sub = await Broker.ConnectAsync();
        await using var pub = await Broker.ConnectAsync();
        var subscribed = await sub.SubscribeAsync("chat.basic", "s1");
        Assert.Equal("chat.basic", (string?)subscribed["topic"]);
        Assert.NotNull((string?)subscribed["pos"]);

        var pos = await pub.PublishAsync("chat.basic", new { text = "hello" }, "p1");

        var msg = await sub.ExpectAsync("message");
        Assert.Equal("chat.basic", (string?)msg["topic"]);
        Assert.Equal(pos, (string?)msg["pos"]);
        Assert.Equal("hello", (string?)msg["data"]!["text"]);
        Assert.True((long)msg["ts"]! > 0);
    }
}
