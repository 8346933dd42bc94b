using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

/// <summary>Records written straight to Kafka (kcat, any producer) reach WebSocket subscribers.</summary>
public sealed class ExternalProducerTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    [Fact]
    public async Task Records_injected_with_kcat_are_delivered_json_as_json_and_text_as_a_string()
    {
        const string topic = "external.kcat";
        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic); // creates the topic

        await Kcat.ProduceAsync(Broker.KafkaBootstrap, topic, ["-K", ":"], "k1:hello from kcat", "k2:{\"price\":42}");

        var m = await sub.TakeAsync(2);
        Assert.Equal("hello from kcat", m[0].Data.GetString());
        Assert.Equal("k1", m[0].Key);
        Assert.Equal(42, m[1].Int("price"));
        Assert.Equal("k2", m[1].Key);
    }

    [Fact]
    public async Task Records_from_a_Confluent_producer_are_delivered_in_order_with_positions_after_client_publishes()
    {
        const string topic = "external.confluent";
        await using var client = await Broker.ClientAsync();
        await using var pub = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync(topic);
        var clientPos = await pub.PublishJsonAsync(topic, new { from = "ws" });

        using var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = Broker.KafkaBootstrap, Acks = Acks.All }).Build();
        await producer.ProduceAsync(topic, new Message<string?, string> { Value = "[1,2,3]" });
        await producer.ProduceAsync(topic, new Message<string?, string> { Key = "k", Value = "plain" });

        var m = await sub.TakeAsync(3);
        Assert.Equal(clientPos, m[0].Pos);
        Assert.Equal(3, m[1].Data.GetArrayLength());
        Assert.Null(m[1].Key);
        Assert.Equal("plain", m[2].Data.GetString());
        Assert.Equal("k", m[2].Key);
    }
}
