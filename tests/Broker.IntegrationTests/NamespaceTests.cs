using Broker.Client;
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
        await using var client = await Broker.ClientAsync();
        await using var pub = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync("orders.eu");
        await pub.PublishJsonAsync("orders.eu", new { n = 1 });
        await ProduceExternal("svc.orders.eu", "{\"n\":2}");
        var m = await sub.TakeAsync(2);
        Assert.Equal(1, m[0].Int("n"));
        Assert.Equal("orders.eu", m[1].Topic);
        Assert.Equal(2, m[1].Int("n"));
    }

    [Fact]
    public async Task A_read_only_namespace_refuses_publishes_and_delivers_what_kafka_producers_write()
    {
        await using var client = await Broker.ClientAsync();
        var sub = await client.SubscribeWithinAsync("feeds.prices.eu");
        var refused = await Assert.ThrowsAsync<BrokerErrorException>(() => client.PublishJsonAsync("feeds.prices.eu", 1));
        Assert.Equal(BrokerErrorCodes.Forbidden, refused.Code);
        await ProduceExternal("ext-feeds.prices.eu", "{\"price\":7}");
        Assert.Equal(7, (await sub.NextAsync()).Int("price"));
    }

    [Fact]
    public async Task An_unmapped_topic_is_refused_with_the_configured_code()
    {
        await using var client = await Broker.ClientAsync();
        var sub = await Assert.ThrowsAsync<BrokerErrorException>(() => client.SubscribeWithinAsync("chat"));
        Assert.Equal(BrokerErrorCodes.NotFound, sub.Code);
        var pub = await Assert.ThrowsAsync<BrokerErrorException>(() => client.PublishJsonAsync("chat", 1));
        Assert.Equal(BrokerErrorCodes.NotFound, pub.Code);
    }

    [Fact]
    public async Task A_topic_that_must_exist_is_not_found_until_it_is_created()
    {
        await using var client = await Broker.ClientAsync();
        var sub = await Assert.ThrowsAsync<BrokerErrorException>(() => client.SubscribeWithinAsync("legacy"));
        Assert.Equal(BrokerErrorCodes.NotFound, sub.Code);
        var pub = await Assert.ThrowsAsync<BrokerErrorException>(() => client.PublishJsonAsync("legacy", 0));
        Assert.Equal(BrokerErrorCodes.NotFound, pub.Code);

        Broker.App.Services.GetRequiredService<MockKafkaCluster>().CreateTopic("legacy-events");
        // The broker may still answer from what it knew: subscribe again until it sees the topic (bounded).
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        BrokerSubscription legacy;
        while (true)
        {
            try
            {
                legacy = await client.SubscribeAsync("legacy", cancellationToken: deadline.Token);
                break;
            }
            catch (BrokerErrorException e) when (e.Code == BrokerErrorCodes.NotFound)
            {
                await Task.Delay(100, deadline.Token);
            }
        }
        await ProduceExternal("legacy-events", "{\"n\":1}");
        Assert.Equal(1, (await legacy.NextAsync()).Int("n"));
    }
}
