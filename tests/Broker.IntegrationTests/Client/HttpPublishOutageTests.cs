using System.Diagnostics;
using System.Net;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests.Client;

/// <summary>POST /v1/publish while the Kafka-protocol log is down (the embedded mock broker set down, as in KafkaOutageTests).</summary>
public sealed class HttpPublishOutageTests : IAsyncLifetime
{
    private TestBroker _broker = null!;

    public async Task InitializeAsync() => _broker = await TestBroker.StartAsync(new Dictionary<string, string>
    {
        ["broker.kafka.produce-timeout"] = "2s",
        ["broker.kafka.query-timeout"] = "2s",
        ["broker.websocket.request-timeout"] = "5s", // more than produce-timeout + topics.answer-margin
    });

    public async Task DisposeAsync()
    {
        try { Log.SetBrokerUp(); } catch (KafkaException) { }
        await _broker.DisposeAsync();
    }

    private MockKafkaCluster Log => _broker.App.Services.GetRequiredService<MockKafkaCluster>();

    [Fact]
    public async Task While_the_log_is_down_a_publish_gets_503_unavailable_and_the_resend_with_the_same_key_is_written_once()
    {
        const string topic = "outage.http";
        const string body = """{"topic":"outage.http","data":{"n":1}}""";
        // Setup: the topic exists and its writer runs. Its first publish creates the topic and
        // starts the writer, which a loaded machine may not finish within this test's short
        // query-timeout: resent with the same key (written once) until the log takes it.
        var setup = Stopwatch.StartNew();
        while ((await HttpPublishTests.Post(_broker.HttpAddress, """{"topic":"outage.http","data":{"n":0}}""", "outage-setup")).Status != HttpStatusCode.OK)
            Assert.True(setup.Elapsed < TimeSpan.FromSeconds(60), "the topic's first publish was not taken in time");

        Log.SetBrokerDown();
        var key = $"outage-{Guid.NewGuid():N}";
        var (status, error) = await HttpPublishTests.Post(_broker.HttpAddress, body, key);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("unavailable", (string?)error["code"]);
        Log.SetBrokerUp();

        // The service resends with the same key until the log takes it.
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var (s, reply) = await HttpPublishTests.Post(_broker.HttpAddress, body, key);
            if (s == HttpStatusCode.OK) break;
            Assert.Equal("unavailable", (string?)reply["code"]);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the log did not come back in time");
        }
        var log = LogReadBack.All(_broker.KafkaBootstrap, topic);
        Assert.Single(log, r => r.Headers.GetValueOrDefault("broker-id") == key);
        Assert.Equal(["{\"n\":0}", "{\"n\":1}"], log.Select(r => r.Text));
    }
}
