using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>
/// A broker with a smaller outbound buffer (256 frames instead of 1024) and a long close timeout,
/// for a client that never reads: 2,000 × 16 KiB overflow 256 frames plus the socket buffers.
/// The buffer must still absorb the bursts in which the node feed hands a batch of records to
/// every subscriber at once, or healthy readers are closed too (16 frames does not).
/// </summary>
public sealed class SlowConsumerBrokerFixture() : ConfiguredBrokerFixture(new Dictionary<string, string>
{
    ["broker.websocket.outbound-buffer-frames"] = "256",
    // The non-reading client is stuck for as long as the publishing takes: give it time to
    // start reading before the server gives up on the close handshake (or on its pings).
    ["broker.websocket.close-timeout"] = "90s",
    ["broker.websocket.idle-timeout"] = "5m",
});

/// <summary>A broker whose outbound buffer (16 frames) is smaller than the requests a connection may have in flight (64).</summary>
public sealed class TinyBufferBrokerFixture() : ConfiguredBrokerFixture(new Dictionary<string, string>
{
    ["broker.websocket.outbound-buffer-frames"] = "16",
});

/// <summary>A client that never reads is closed as a slow consumer; the others get every message.</summary>
[Collection(BadInputCollection.Name)]
public sealed class BadInputSlowConsumerTests(SlowConsumerBrokerFixture fixture) : IClassFixture<SlowConsumerBrokerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task Client_that_never_reads_is_closed_as_slow_consumer_while_others_get_every_message()
    {
        const string topic = "bad.slow-consumer";
        const int count = 2_000;
        var data = new string('s', 16 * 1024);

        await using var normal = await Broker.ConnectAsync();
        await normal.SubscribeAsync(topic, "normal");

        // The slow client subscribes with raw frames and reads only the reply, then stops reading.
        await using var slow = await WsClient.ConnectAsync(Broker.WsUri, startReading: false);
        await slow.SendTextAsync($$"""{"type":"subscribe","id":"slow","topic":"{{topic}}"}""");
        var reply = await ReadOneRawAsync(slow.Socket);
        Assert.Equal("subscribed", (string?)reply["type"]);
        Assert.Equal("slow", (string?)reply["id"]);

        await using var publisher = await Broker.ConnectAsync();
        // The embedded log keeps only the last ~5 MB of a partition (librdkafka's mock drops older
        // records, like retention): wait until the node's feed is reading at the head before the
        // 32 MB burst, so that it never has to read records the log already dropped.
        var warmUp = await publisher.PublishAsync(topic, "warm-up", "warm-up");
        Assert.Equal(warmUp, (string?)(await normal.ExpectAsync("message", Timeout))["pos"]);
        var receiving = ReceiveMessagesAsync(normal, count);
        var acked = await PublishManyAsync(publisher, topic, count, data, window: 4);

        // The normal subscriber got every acknowledged message, once each.
        var received = await receiving.WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(acked.Order(StringComparer.Ordinal), received.Order(StringComparer.Ordinal));

        // Now the slow client reads: whatever was already on its way, then the close.
        slow.StartReading();
        var delivered = new List<string>();
        while (true)
        {
            JsonObject f;
            try { f = await slow.ReceiveAsync(Timeout); }
            catch (InvalidOperationException) { break; } // closed
            Assert.Equal("message", (string?)f["type"]);
            delivered.Add((string)f["pos"]!);
        }
        var (status, reason) = await slow.Closed.WaitAsync(Timeout);
        Assert.Equal((WebSocketCloseStatus)1013, status);
        Assert.Equal("slow_consumer", reason);
        // It got a gap-free prefix of the topic (after the warm-up), then the close: it can resume with since = its last pos.
        Assert.True(delivered.Count <= count, "the slow client was closed before it got everything");
        Assert.Equal(warmUp, delivered[0]);
        Assert.Equal(received.Take(delivered.Count - 1), delivered.Skip(1)); // subscribers see one order
        try { await slow.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", new CancellationTokenSource(Timeout).Token); }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }

        // The server keeps serving.
        var pong = await normal.RequestAsync(new { type = "ping", id = "after" }, "after");
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

    private static Task<List<string>> ReceiveMessagesAsync(WsClient client, int count) => Task.Run(async () =>
    {
        var positions = new List<string>(count);
        while (positions.Count < count)
        {
            var f = await client.ExpectAsync("message", Timeout);
            positions.Add((string)f["pos"]!);
        }
        return positions;
    });

    /// <summary>Publishes <paramref name="count"/> messages keeping at most <paramref name="window"/> unacknowledged; returns the positions in publish order.</summary>
    private static async Task<List<string>> PublishManyAsync(WsClient client, string topic, int count, string data, int window)
    {
        var positions = new string?[count];
        var sent = 0;
        var acked = 0;
        while (sent < Math.Min(window, count)) await Send(sent++);
        while (acked < count)
        {
            var f = await client.ExpectAsync("ack", Timeout);
            positions[int.Parse(((string)f["id"]!)[1..])] = (string)f["pos"]!;
            acked++;
            if (sent < count) await Send(sent++);
        }
        return [.. positions.Select(p => p!)];

        Task Send(int i) => client.SendTextAsync($$"""{"type":"publish","id":"p{{i}}","topic":"{{topic}}","data":"{{data}}"}""");
    }
}

/// <summary>An abort with more replies pending than the outbound buffer holds.</summary>
[Collection(BadInputCollection.Name)]
public sealed class BadInputTinyBufferTests(TinyBufferBrokerFixture fixture) : IClassFixture<TinyBufferBrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task Client_that_disconnects_mid_publish_with_more_replies_than_its_buffer_is_released()
    {
        const string topic = "bad.abort-tiny-buffer";
        // No live observer: with 16 frames a live subscriber would itself overflow on the publish burst;
        // the log is checked by a replay instead.
        await using var by = await Bystanders.StartAsync(Broker, topic, observe: false);
        var before = Broker.App.Services.GetRequiredService<Broker.Core.Connections.ConnectionRegistry>().Count;
        await using var aborter = await Broker.ConnectAsync();
        await BadInputTests.AbortMidPublishAsync(aborter, topic, by);
        await by.AssertLoggedAsync();
        await BadInputTests.AssertConnectionReleasedAsync(Broker, before);
    }
}
