using System.Diagnostics;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

/// <summary>Binary values and Kafka headers of records written by external producers.</summary>
public sealed class RecordDetailsTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    private static readonly byte[] BinaryValue = [0xff, 0x00, 0xc3, 0x28, 0x80];
    private static readonly byte[] BinaryHeader = [0xfe, 0xff];

    private Task Kcat(string topic, string[] args, params string[] lines) =>
        Infrastructure.Kcat.ProduceAsync(Broker.KafkaBootstrap, topic, args, lines);

    private async Task ProduceBinary(string topic)
    {
        using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig { BootstrapServers = Broker.KafkaBootstrap, Acks = Acks.All }).Build();
        await producer.ProduceAsync(topic, new Message<byte[]?, byte[]>
        {
            Value = BinaryValue,
            Headers = new Headers { { "bin", BinaryHeader }, { "text", "t"u8.ToArray() } },
        }).WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>kcat (text value, headers incl. a spoofed broker one), Confluent (binary value and header), a WebSocket publish.</summary>
    private async Task Produce(string topic)
    {
        await Kcat(topic, ["-H", "trace=abc-123", "-H", "tenant=acme", "-H", "broker-client=spoof"], "hello");
        await ProduceBinary(topic);
        await using var pub = await Broker.ConnectAsync();
        await pub.PublishAsync(topic, new { n = 1 }, "p1");
    }

    private static void AssertWithHeaders(JsonObject text, JsonObject binary, JsonObject fromWs)
    {
        Assert.Equal("hello", (string?)text["data"]);
        Assert.Null(text["encoding"]);
        var h = text["headers"]!.AsObject();
        Assert.Equal("abc-123", (string?)h["trace"]);
        Assert.Equal("acme", (string?)h["tenant"]);
        Assert.False(h.ContainsKey("broker-client")); // the broker's own headers are never shown
        Assert.Null(text["headers_base64"]);

        Assert.Equal(Convert.ToBase64String(BinaryValue), (string?)binary["data"]);
        Assert.Equal("base64", (string?)binary["encoding"]);
        Assert.Equal(Convert.ToBase64String(BinaryHeader), (string?)binary["headers"]!["bin"]);
        Assert.Equal("t", (string?)binary["headers"]!["text"]);
        Assert.Equal("bin", (string?)binary["headers_base64"]!.AsArray().Single());

        Assert.Equal(1, (int)fromWs["data"]!["n"]!);
        Assert.Null(fromWs["headers"]); // only broker-internal headers: none to show
    }

    [Fact]
    public async Task Live_subscribers_get_headers_only_when_they_ask_and_binary_values_as_base64()
    {
        const string topic = "details.live";
        await using var plain = await Broker.ConnectAsync();
        await using var withHeaders = await Broker.ConnectAsync();
        await plain.SubscribeAsync(topic, "s");
        await withHeaders.SubscribeAsync(topic, "s", new { headers = true });
        await Produce(topic);

        AssertWithHeaders(await withHeaders.ExpectAsync("message"), await withHeaders.ExpectAsync("message"), await withHeaders.ExpectAsync("message"));
        var text = await plain.ExpectAsync("message");
        var binary = await plain.ExpectAsync("message");
        var fromWs = await plain.ExpectAsync("message");
        Assert.Null(text["headers"]);
        Assert.Null(binary["headers"]);
        Assert.Equal("base64", (string?)binary["encoding"]);
        Assert.Equal(Convert.ToBase64String(BinaryValue), (string?)binary["data"]);
        Assert.Null(fromWs["headers"]);
    }

    [Fact]
    public async Task Replay_carries_headers_when_asked()
    {
        const string topic = "details.replay";
        await using (var creator = await Broker.ConnectAsync()) await creator.SubscribeAsync(topic, "s"); // creates the topic
        await Produce(topic);
        await using var sub = await Broker.ConnectAsync();
        await sub.SubscribeAsync(topic, "s", new { from = "earliest", headers = true });
        AssertWithHeaders(await sub.ExpectAsync("message"), await sub.ExpectAsync("message"), await sub.ExpectAsync("message"));
    }
}
