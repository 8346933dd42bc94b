using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>One replay reader per node and a short stall timeout: a client that stops reading mid-replay must not hold the reader.</summary>
public sealed class ReplayStallBrokerFixture() : ConfiguredBrokerFixture(new Dictionary<string, string>(TestBroker.NoPublishRateLimits)
{
    ["broker.kafka.max-concurrent-replays"] = "1",
    ["broker.websocket.outbound-buffer-frames"] = "16",
    ["broker.websocket.replay-stall-timeout"] = "1s",
    ["broker.websocket.close-timeout"] = "1s",
});

[Collection(BadInputCollection.Name)]
public sealed class ReplayStallTests(ReplayStallBrokerFixture fixture) : IClassFixture<ReplayStallBrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task A_client_that_stops_reading_during_a_replay_is_closed_and_frees_the_replay_reader()
    {
        const string topic = "replay.stall";
        const int count = 2_000; // 2,000 × 16 KiB: more than the socket buffers and the outbound buffer hold
        var data = new string('r', 16 * 1024);
        await using (var pub = await Broker.ConnectAsync())
        {
            var sender = Task.Run(async () =>
            {
                for (var i = 0; i < count; i++) await pub.SendAsync(new { type = "publish", id = $"p{i}", topic, data = new { i, data } });
            });
            for (var i = 0; i < count; i++) Assert.Equal("ack", (string?)(await pub.ReceiveAsync())["type"]);
            await sender;
        }
        await BadInputTests.AssertConnectionReleasedAsync(Broker, 0);

        // The stuck client asks for the whole history and never reads.
        var stuck = await WsClient.ConnectAsync(Broker.WsUri, startReading: false);
        await stuck.SendAsync(new { type = "subscribe", id = "s", topic, from = "earliest" });

        // Only one replay may run on this node: the next one can only finish if the stuck one was closed.
        await using var reader = await Broker.ConnectAsync();
        await reader.SubscribeAsync(topic, "s", new { last = 3 });
        for (var i = count - 3; i < count; i++) Assert.Equal(i, (int)(await reader.ExpectAsync("message", TimeSpan.FromSeconds(60)))["data"]!["i"]!);

        await BadInputTests.AssertConnectionReleasedAsync(Broker, 1); // only the reader is left
        stuck.Socket.Abort();
        await stuck.DisposeAsync();
    }
}
