using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>
/// A broker whose outbound buffer is bounded by bytes long before frames: 1 MiB, against 100,000
/// frames. 60 KiB messages fill the bytes in about 17 frames.
/// </summary>
public sealed class OutboundBytesBrokerFixture() : ConfiguredBrokerFixture(new Dictionary<string, string>
{
    ["broker.websocket.outbound-buffer-frames"] = "100000",
    ["broker.websocket.outbound-buffer-bytes"] = "1 MiB",
    // The non-reading client must not be dropped for its silence before the buffer fills.
    ["broker.websocket.close-timeout"] = "90s",
    ["broker.websocket.idle-timeout"] = "5m",
});

/// <summary>
/// <c>outbound-buffer-bytes</c>: a client that stops reading is closed with 1013 <c>slow_consumer</c>
/// when a live message finds its queued bytes past the budget (the frame count is nowhere near its
/// limit), while a client that reads gets every message.
/// </summary>
public sealed class OutboundBytesLimitTests(OutboundBytesBrokerFixture fixture) : IClassFixture<OutboundBytesBrokerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_live_message_past_the_byte_budget_closes_the_client_that_stopped_reading_with_1013_and_another_client_gets_everything()
    {
        const string topic = "outbound.bytes";
        var data = new string('b', 60 * 1024 - 16);
        var broker = fixture.Broker;

        await using var reader = await broker.ConnectAsync();
        await reader.SubscribeAsync(topic, "r");
        await using var stalled = await WsClient.ConnectAsync(broker.WsUri, startReading: false);
        await stalled.SendTextAsync($$"""{"type":"subscribe","id":"s","topic":"{{topic}}"}""");
        var subscribed = await ReadOneRawAsync(stalled.Socket);
        Assert.Equal("subscribed", (string?)subscribed["type"]);

        // Publish until the stalled client is closed: the socket buffers of both ends take a few MB
        // first, then the broker's queue for it grows to 1 MiB. Bounded: 600 × 60 KiB = 36 MB. The
        // reader takes each message before the next is published: its queue never holds more than
        // one, whatever the machine's load, so what is tested is the stalled client's budget.
        await using var publisher = await broker.ConnectAsync();
        var metrics = broker.App.Services.GetRequiredService<Broker.Core.Metrics.BrokerMetrics>();
        var closesBefore = metrics.SlowConsumerCloses;
        for (var i = 0; i < 600 && metrics.SlowConsumerCloses == closesBefore; i++)
        {
            var pos = await publisher.PublishAsync(topic, data, $"p{i}");
            Assert.Equal(pos, (string?)(await reader.ExpectAsync("message", Timeout))["pos"]); // every message, once, in order
        }
        Assert.True(metrics.SlowConsumerCloses > closesBefore, "the byte budget never closed the stalled client");

        // The stalled client now reads what was already on its way, then the close: 1013 slow_consumer.
        stalled.StartReading();
        while (true)
        {
            try { await stalled.ReceiveAsync(Timeout); }
            catch (InvalidOperationException) { break; } // closed
        }
        var (status, reason) = await stalled.Closed.WaitAsync(Timeout);
        Assert.Equal((WebSocketCloseStatus)1013, status);
        Assert.Equal("slow_consumer", reason);

        var pong = await reader.RequestAsync(new { type = "ping", id = "after" }, "after");
        Assert.Equal("pong", (string?)pong["type"]);
    }

    private static async Task<JsonObject> ReadOneRawAsync(ClientWebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        var count = 0;
        using var cts = new CancellationTokenSource(Timeout);
        ValueWebSocketReceiveResult r;
        do
        {
            r = await socket.ReceiveAsync(buffer.AsMemory(count), cts.Token);
            count += r.Count;
        } while (!r.EndOfMessage);
        return JsonNode.Parse(buffer.AsSpan(0, count))!.AsObject();
    }
}
