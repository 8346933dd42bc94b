using Broker.Client;
using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

/// <summary>Per-topic settings changed at run time (read-only) are persisted and survive a restart of the broker.</summary>
public sealed class TopicSettingsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("topic-settings-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Dictionary<string, string> Settings() => new()
    {
        ["broker.persistence.provider"] = "sqlite",
        ["broker.persistence.sqlite.path"] = Path.Combine(_dir, "broker.db"),
    };

    [Fact]
    public async Task Read_only_set_with_brokerctl_refuses_publishes_lets_Kafka_records_through_and_survives_a_restart()
    {
        const string topic = "settings.ro";
        await using (var broker = await TestBroker.StartAsync(Settings()))
        {
            await using var pub = await broker.ClientAsync();
            await pub.PublishJsonAsync(topic, "before");

            var (exit, output, error) = await BrokerCtlTests.Ctl(broker.AdminAddress, "topic", "set-read-only", topic, "true");
            Assert.True(exit == 0, error);
            Assert.Contains("yes", output);

            var refused = await Assert.ThrowsAsync<BrokerErrorException>(() => pub.PublishJsonAsync(topic, "refused"));
            Assert.Equal(BrokerErrorCodes.Forbidden, refused.Code);

            // Streams owned by other services still reach subscribers.
            await using var client = await broker.ClientAsync();
            var sub = await client.SubscribeWithinAsync(topic);
            using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.KafkaBootstrap }).Build())
                await producer.ProduceAsync(topic, new Message<Null, string> { Value = "\"from a service\"" });
            Assert.Equal("from a service", (await sub.NextAsync()).Data.GetString());
        }

        // A new broker process on the same database: the setting is still there.
        await using (var broker = await TestBroker.StartAsync(Settings()))
        {
            var (exit, output, error) = await BrokerCtlTests.Ctl(broker.AdminAddress, "topic", "settings", topic, "--json");
            Assert.True(exit == 0, error);
            Assert.Contains("\"readOnly\": true", output.Replace("\":true", "\": true"));
            await using var pub = await broker.ClientAsync();
            var refused = await Assert.ThrowsAsync<BrokerErrorException>(() => pub.PublishJsonAsync(topic, "refused"));
            Assert.Equal(BrokerErrorCodes.Forbidden, refused.Code);

            (exit, _, error) = await BrokerCtlTests.Ctl(broker.AdminAddress, "topic", "set-read-only", topic, "false");
            Assert.True(exit == 0, error);
            await pub.PublishJsonAsync(topic, "writable again");
        }
    }
}
