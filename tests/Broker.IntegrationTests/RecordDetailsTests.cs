using Broker.Client;
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
        await using var pub = await Broker.ClientAsync();
        await pub.PublishJsonAsync(topic, new { n = 1 });
    }

    private static void AssertWithHeaders(IReadOnlyList<BrokerMessage> messages)
    {
        var (text, binary, fromWs) = (messages[0], messages[1], messages[2]);
        Assert.Equal("hello", text.Data.GetString());
        Assert.False(text.IsBase64);
        var h = text.Headers!;
        Assert.Equal("abc-123", h["trace"]);
        Assert.Equal("acme", h["tenant"]);
        Assert.False(h.ContainsKey("broker-client")); // the broker's own headers are never shown
        Assert.Null(text.HeadersBase64);

        Assert.True(binary.IsBase64);
        Assert.Equal(BinaryValue, binary.GetBinaryData());
        Assert.Equal(Convert.ToBase64String(BinaryHeader), binary.Headers!["bin"]);
        Assert.Equal("t", binary.Headers["text"]);
        Assert.Equal("bin", binary.HeadersBase64!.Single());

        Assert.Equal(1, fromWs.Int("n"));
        Assert.Null(fromWs.Headers); // only broker-internal headers: none to show
    }

    [Fact]
    public async Task Live_subscribers_get_headers_only_when_they_ask_and_binary_values_as_base64()
    {
        const string topic = "details.live";
        await using var client = await Broker.ClientAsync();
        await using var other = await Broker.ClientAsync();
        var plain = await client.SubscribeWithinAsync(topic);
        var withHeaders = await other.SubscribeWithinAsync(topic, new SubscribeOptions { Headers = true });
        await Produce(topic);

        AssertWithHeaders(await withHeaders.TakeAsync(3));
        var m = await plain.TakeAsync(3);
        Assert.Null(m[0].Headers);
        Assert.Null(m[1].Headers);
        Assert.True(m[1].IsBase64);
        Assert.Equal(BinaryValue, m[1].GetBinaryData());
        Assert.Null(m[2].Headers);
    }

    [Fact]
    public async Task Replay_carries_headers_when_asked()
    {
        const string topic = "details.replay";
        await using (var creator = await Broker.ClientAsync()) await creator.SubscribeWithinAsync(topic); // creates the topic
        await Produce(topic);
        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { From = StartFrom.Earliest, Headers = true });
        AssertWithHeaders(await sub.TakeAsync(3));
    }
}
