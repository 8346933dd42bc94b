using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

public sealed class PubSubTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task Publish_is_acknowledged_and_delivered_to_a_subscriber_on_another_connection()
    {
        await using var sub = await Broker.ClientAsync();
        await using var pub = await Broker.ClientAsync();
        var chat = await sub.SubscribeWithinAsync("chat.basic");
        Assert.Equal("chat.basic", chat.Topic);
        Assert.NotNull(chat.Head);

        var pos = await pub.PublishJsonAsync("chat.basic", new { text = "hello" });

        var msg = await chat.NextAsync();
        Assert.Equal("chat.basic", msg.Topic);
        Assert.Equal(pos, msg.Pos);
        Assert.Equal("hello", msg.Str("text"));
        Assert.True(msg.TimestampMs > 0);
        await chat.AssertNothingMoreAsync(sub);
    }
}
