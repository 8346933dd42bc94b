using Broker.Client;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>
/// Retention deleted the start of a topic (simulated with the embedded log's delete-records):
/// resuming from a deleted position is reported with <c>recovered: false</c> and starts at the
/// oldest retained message; <c>earliest</c> and <c>last</c> start at the new low watermark.
/// </summary>
public sealed class RetentionTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    private MockKafkaCluster Cluster => Broker.App.Services.GetRequiredService<MockKafkaCluster>();

    /// <summary>Publishes seq 0..9, then lets retention delete offsets 0..4; returns the positions by seq.</summary>
    private async Task<string[]> TopicWithDeletedStart(string topic)
    {
        await using var pub = await Broker.ClientAsync();
        var positions = new string[10];
        for (var i = 0; i < 10; i++) positions[i] = await pub.PublishJsonAsync(topic, new { seq = i });
        Cluster.DeleteRecords(topic, 0, 5);
        return positions;
    }

    /// <summary>Subscribes a new client and returns it with the subscription's first <paramref name="count"/> messages, and nothing more.</summary>
    private static async Task<(BrokerSubscription Sub, List<BrokerMessage> Messages)> Receive(BrokerClient client, string topic, SubscribeOptions options, int count)
    {
        var sub = await client.SubscribeWithinAsync(topic, options);
        var messages = await sub.TakeAsync(count);
        await sub.AssertNothingMoreAsync(client);
        return (sub, messages);
    }

    private static List<int> Seqs(List<BrokerMessage> messages) => [.. messages.Select(m => m.Int("seq"))];

    [Fact]
    public async Task Since_older_than_retention_is_not_recovered_and_delivers_from_the_oldest_retained_message()
    {
        const string topic = "retention.since";
        var positions = await TopicWithDeletedStart(topic);
        await using var client = await Broker.ClientAsync();
        var (sub, messages) = await Receive(client, topic, new SubscribeOptions { Since = positions[1] }, 5); // seen 0..1; 2..4 are gone
        Assert.False(sub.Recovered);
        Assert.Equal(Enumerable.Range(5, 5), Seqs(messages));
        Assert.True(messages[0].AfterGap); // the client tells the application that 2..4 are missing
        Assert.DoesNotContain(messages.Skip(1), m => m.AfterGap);
    }

    [Fact]
    public async Task Since_right_before_the_oldest_retained_message_is_recovered()
    {
        const string topic = "retention.since-edge";
        var positions = await TopicWithDeletedStart(topic);
        await using var client = await Broker.ClientAsync();
        var (sub, messages) = await Receive(client, topic, new SubscribeOptions { Since = positions[4] }, 5); // seen 0..4: nothing missed
        Assert.True(sub.Recovered);
        Assert.Equal(Enumerable.Range(5, 5), Seqs(messages));
        Assert.DoesNotContain(messages, m => m.AfterGap);
    }

    [Fact]
    public async Task Earliest_and_last_start_at_the_new_low_watermark()
    {
        const string topic = "retention.earliest";
        await TopicWithDeletedStart(topic);
        await using var earliest = await Broker.ClientAsync();
        Assert.Equal(Enumerable.Range(5, 5), Seqs((await Receive(earliest, topic, new SubscribeOptions { From = StartFrom.Earliest }, 5)).Messages));
        await using var last = await Broker.ClientAsync();
        Assert.Equal(Enumerable.Range(5, 5), Seqs((await Receive(last, topic, new SubscribeOptions { Last = 8 }, 5)).Messages));
    }
}
