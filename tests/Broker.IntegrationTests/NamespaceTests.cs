using System.Diagnostics;
using System.Text.Json.Nodes;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

public sealed class NamespaceFixture : IAsyncLifetime
{
    public TestBroker Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await TestBroker.StartAsync(hocon: """
        broker.namespaces = [
          { pattern = "orders.*", kafka-topic = "svc.{topic}" }
          { pattern = "feeds.>", kafka-prefix = "ext-", read-only = true }
          { pattern = "legacy", kafka-topic = "legacy-events", create = false }
        ]
        broker.namespaces-default = not_found
        """);

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

/// <summary>HOCON namespaces map broker topics to Kafka topics; unmapped, read-only and must-exist topics are refused.</summary>
public sealed class NamespaceTests(NamespaceFixture fixture) : IClassFixture<NamespaceFixture>
{
    private TestBroker Broker => fixture.Broker;

    private async Task ProduceExternal(string kafkaTopic, string value)
    {
        using var producer = new ProducerBuilder<string?, string>(new ProducerConfig { BootstrapServers = Broker.KafkaBootstrap, Acks = Acks.All }).Build();
        await producer.ProduceAsync(kafkaTopic, new Message<string?, string> { Value = value }).WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_mapped_topic_reads_and_writes_its_kafka_topic()
    {
        await using var sub = await Broker.ConnectAsync();
        await using var pub = await Broker.ConnectAsync();
        await sub.SubscribeAsync("orders.eu", "s");
        await pub.PublishAsync("orders.eu", new { n = 1 }, "p1");
        await ProduceExternal("svc.orders.eu", "{\"n\":2}");
        Assert.Equal(1, (int)(await sub.ExpectAsync("message"))["data"]!["n"]!);
        var external = await sub.ExpectAsync("message");
        Assert.Equal("orders.eu", (string?)external["topic"]);
        Assert.Equal(2, (int)external["data"]!["n"]!);
    }

    [Fact]
    public async Task A_read_only_namespace_refuses_publishes_and_delivers_what_kafka_producers_write()
    {
        await using var client = await Broker.ConnectAsync();
        await client.SubscribeAsync("feeds.prices.eu", "s");
        var refused = await client.RequestAsync(new { type = "publish", id = "p", topic = "feeds.prices.eu", data = 1 }, "p");
        Assert.Equal("forbidden", (string?)refused["code"]);
        await ProduceExternal("ext-feeds.prices.eu", "{\"price\":7}");
        Assert.Equal(7, (int)(await client.ExpectAsync("message"))["data"]!["price"]!);
    }

    [Fact]
    public async Task An_unmapped_topic_is_refused_with_the_configured_code()
    {
        await using var client = await Broker.ConnectAsync();
        var sub = await client.RequestAsync(new { type = "subscribe", id = "s", topic = "chat" }, "s");
        Assert.Equal("not_found", (string?)sub["code"]);
        var pub = await client.RequestAsync(new { type = "publish", id = "p", topic = "chat", data = 1 }, "p");
        Assert.Equal("not_found", (string?)pub["code"]);
    }

    [Fact]
    public async Task A_topic_that_must_exist_is_not_found_until_it_is_created()
    {
        await using var client = await Broker.ConnectAsync();
        var sub = await client.RequestAsync(new { type = "subscribe", id = "s0", topic = "legacy" }, "s0");
        Assert.Equal("not_found", (string?)sub["code"]);
        var pub = await client.RequestAsync(new { type = "publish", id = "p0", topic = "legacy", data = 0 }, "p0");
        Assert.Equal("not_found", (string?)pub["code"]);

        Broker.App.Services.GetRequiredService<MockKafkaCluster>().CreateTopic("legacy-events");
        var deadline = Stopwatch.StartNew();
        JsonObject reply;
        var attempt = 0;
        do reply = await client.RequestAsync(new { type = "subscribe", id = $"s{++attempt}", topic = "legacy" }, $"s{attempt}");
        while ((string?)reply["type"] != "subscribed" && deadline.Elapsed < TimeSpan.FromSeconds(30));
        Assert.Equal("subscribed", (string?)reply["type"]);
        await ProduceExternal("legacy-events", "{\"n\":1}");
        Assert.Equal(1, (int)(await client.ExpectAsync("message"))["data"]!["n"]!);
    }
}
