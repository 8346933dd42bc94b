using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>A broker whose batched frames are at most 4 KiB and that negotiates permessage-deflate.</summary>
public sealed class FrameBatchingFixture() : ConfiguredBrokerFixture(new Dictionary<string, string>
{
    ["broker.websocket.batch-max-bytes"] = FrameBatchingTests.MaxBatchBytes.ToString(),
    ["broker.websocket.compression"] = "on",
});

/// <summary>
/// Opt-in frame batching (<c>?batch=1</c>) and permessage-deflate change how frames travel, never
/// what a client receives: batched, plain and compressed subscribers of one topic get the same
/// messages in the same order, each once.
/// </summary>
public sealed class FrameBatchingTests(FrameBatchingFixture fixture) : IClassFixture<FrameBatchingFixture>
{
    public const int MaxBatchBytes = 4096;

    private TestBroker Broker => fixture.Broker;

    /// <summary>Publishes <paramref name="count"/> messages with many in flight; returns the acks' positions by request id.</summary>
    private static async Task<Dictionary<string, string>> PublishAll(WsClient pub, string topic, int first, int count)
    {
        for (var i = first; i < first + count; i++)
            await pub.SendAsync(new { type = "publish", id = $"p{i}", topic, data = new { i, pad = new string('x', 150) } });
        var acks = new Dictionary<string, string>();
        while (acks.Count < count)
        {
            var f = await pub.ReceiveAsync();
            Assert.Equal("ack", (string?)f["type"]);
            Assert.True(acks.TryAdd((string)f["id"]!, (string)f["pos"]!), "an ack came twice");
        }
        return acks;
    }

    [Fact]
    public async Task Batched_and_plain_subscribers_get_the_same_messages_in_order_once_and_arrays_stay_within_the_bound()
    {
        var topic = $"batch.{Guid.NewGuid():N}";
        await using var pub = await Broker.ConnectAsync("?batch=1");
        var history = await PublishAll(pub, topic, 0, 3000);

        // A replay of 3,000 messages queues frames faster than one at a time can be written: the
        // batched subscriber gets arrays, the plain one single objects.
        await using var batched = await Broker.ConnectAsync("?batch=1");
        await using var plain = await Broker.ConnectAsync();
        await batched.SubscribeAsync(topic, "s", new { from = "earliest" });
        await plain.SubscribeAsync(topic, "s", new { from = "earliest" });
        var live = await PublishAll(pub, topic, 3000, 500);

        var expected = history.Concat(live).OrderBy(kv => int.Parse(kv.Key[1..])).Select(kv => kv.Value).ToList();
        var fromBatched = await batched.MessagesAsync(expected.Count);
        var fromPlain = await plain.MessagesAsync(expected.Count);
        Assert.Equal(expected, fromBatched.Select(m => (string)m["pos"]!));
        Assert.Equal(expected, fromPlain.Select(m => (string)m["pos"]!));
        Assert.Equal(Enumerable.Range(0, expected.Count), fromBatched.Select(m => (int)m["data"]!["i"]!));

        Assert.True(batched.ArrayFrames > 0, "the batched subscriber got no array frame");
        Assert.InRange(batched.LargestArrayFrame, 1, MaxBatchBytes);
        Assert.Equal(0, plain.ArrayFrames);
        // Nothing more was queued for either (a ping is answered before anything else would come).
        foreach (var c in new[] { batched, plain })
        {
            await c.SendAsync(new { type = "ping", id = "end" });
            Assert.Equal("pong", (string?)(await c.ReceiveAsync())["type"]);
        }
    }

    [Fact]
    public async Task A_client_offering_permessage_deflate_gets_it_and_the_same_messages_as_a_plain_one()
    {
        var topic = $"deflate.{Guid.NewGuid():N}";
        await using var compressed = await Broker.ConnectAsync(configure: o =>
        {
            o.DangerousDeflateOptions = new WebSocketDeflateOptions();
            o.CollectHttpResponseDetails = true;
        });
        await using var plain = await Broker.ConnectAsync(configure: o => o.CollectHttpResponseDetails = true);
        Assert.Contains("permessage-deflate", string.Join(",", compressed.Socket.HttpResponseHeaders!["Sec-WebSocket-Extensions"]));
        Assert.False(plain.Socket.HttpResponseHeaders!.ContainsKey("Sec-WebSocket-Extensions"));

        await compressed.SubscribeAsync(topic);
        await plain.SubscribeAsync(topic);
        await using var pub = await Broker.ConnectAsync();
        var acks = new List<string>();
        for (var i = 0; i < 50; i++) acks.Add(await pub.PublishAsync(topic, new { i, text = "a realistic, repetitive JSON payload " + new string('z', 200) }, $"p{i}"));
        var fromCompressed = await compressed.MessagesAsync(50);
        var fromPlain = await plain.MessagesAsync(50);
        Assert.Equal(acks, fromCompressed.Select(m => (string)m["pos"]!));
        Assert.Equal(fromPlain.Select(m => m.ToJsonString()), fromCompressed.Select(m => m.ToJsonString()));
    }
}
