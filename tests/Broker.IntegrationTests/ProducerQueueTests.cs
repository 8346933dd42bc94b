using System.Diagnostics;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests;

/// <summary>
/// The node's producer queue is bounded (<c>broker.kafka.producer-queue-messages</c> / <c>-bytes</c>):
/// during a Kafka outage it fills and further publishes are refused at once — nothing grows without
/// bound, nothing refused is written later, and the queue drains when the log returns.
/// </summary>
public sealed class ProducerQueueTests
{
    [Fact]
    public async Task A_full_producer_queue_answers_unavailable_at_once_and_what_it_refused_is_never_written()
    {
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.kafka.producer-queue-messages"] = "20",
            ["broker.kafka.produce-timeout"] = "4s",
            ["broker.topics.answer-margin"] = "1s",
            ["broker.websocket.request-timeout"] = "8s",
        });
        var log = broker.App.Services.GetRequiredService<MockKafkaCluster>();
        const string topic = "queue.full";
        await using var client = await broker.ConnectAsync("?client=queue-" + Guid.NewGuid().ToString("N"));
        await client.PublishAsync(topic, "before", "before"); // the topic exists, the producer is connected

        log.SetBrokerDown();
        try
        {
            // 20 fill the queue (they wait for the log); the next ones are refused without waiting.
            const int count = 40;
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < count; i++) await client.SendAsync(new { type = "publish", id = $"q{i}", topic, data = i });
            var full = new List<int>();
            for (var n = 0; n < count - 20; n++)
            {
                var f = await client.ReceiveAsync(TimeSpan.FromSeconds(30));
                Assert.Equal("unavailable", (string?)f["code"]);
                Assert.Contains("queue is full", (string?)f["message"]);
                full.Add(int.Parse(((string)f["id"]!)[1..]));
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the refusals took {clock.Elapsed} (they must not wait for produce-timeout)");
            // The queued ones are answered when their produce-timeout passes: the log was down, they were never sent.
            for (var n = 0; n < 20; n++)
            {
                var f = await client.ReceiveAsync(TimeSpan.FromSeconds(30));
                Assert.Equal("unavailable", (string?)f["code"]);
            }

            log.SetBrokerUp();
            // The log is back: the producer reconnects and publishes are written again.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var reply = await client.RequestAsync(new { type = "publish", id = "after", topic, data = "after" }, "after");
                if ((string?)reply["type"] == "ack") break;
                Assert.True(DateTime.UtcNow < deadline, "the log did not come back");
            }
            var records = LogReadBack.All(broker.KafkaBootstrap, topic);
            Assert.Equal(["\"before\"", "\"after\""], records.Select(r => r.Text)); // nothing refused was written
        }
        finally
        {
            try { log.SetBrokerUp(); } catch (KafkaException) { }
        }
    }
}
