using System.Diagnostics;
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
        await using var sub = await Broker.ConnectAsync();
        await sub.SubscribeAsync(topic, "s"); // creates the topic

        await Kcat.ProduceAsync(Broker.KafkaBootstrap, topic, ["-K", ":"], "k1:hello from kcat", "k2:{\"price\":42}");

        var text = await sub.ExpectAsync("message");
        Assert.Equal("hello from kcat", (string?)text["data"]);
        Assert.Equal("k1", (string?)text["key"]);
        var json = await sub.ExpectAsync("message");
        Assert.Equal(42, (int)json["data"]!["price"]!);
        Assert.Equal("k2", (string?)json["key"]);
    }

    [Fact]
    public async Task Records_from_a_Confluent_producer_are_delivered_in_order_with_positions_after_client_publishes()
    {
        const string topic = "external.confluent";
        await using var sub = await Broker.ConnectAsync();
        await using var pub = await Broker.ConnectAsync();
        await sub.SubscribeAsync(topic, "s");
        var clientPos = await pub.PublishAsync(topic, new { from = "ws" }, "p1");

        using var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = Broker.KafkaBootstrap, Acks = Acks.All }).Build();
        await producer.ProduceAsync(topic, new Message<string?, string> { Value = "[1,2,3]" });
        await producer.ProduceAsync(topic, new Message<string?, string> { Key = "k", Value = "plain" });

        var m1 = await sub.ExpectAsync("message");
        Assert.Equal(clientPos, (string?)m1["pos"]);
        var m2 = await sub.ExpectAsync("message");
        Assert.Equal(3, m2["data"]!.AsArray().Count);
        Assert.Null(m2["key"]);
        var m3 = await sub.ExpectAsync("message");
        Assert.Equal("plain", (string?)m3["data"]);
        Assert.Equal("k", (string?)m3["key"]);
    }
}
