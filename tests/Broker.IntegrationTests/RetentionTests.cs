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
        await using var pub = await Broker.ConnectAsync();
        var positions = new string[10];
        for (var i = 0; i < 10; i++) positions[i] = await pub.PublishAsync(topic, new { seq = i }, $"p{i}");
        Cluster.DeleteRecords(topic, 0, 5);
        return positions;
    }

    private static async Task<List<int>> ReceiveSeqs(WsClient sub, int count)
    {
        var seqs = new List<int>();
        while (seqs.Count < count) seqs.Add((int)(await sub.ExpectAsync("message"))["data"]!["seq"]!);
        // Nothing more: a ping is answered with no message before it.
        await sub.SendAsync(new { type = "ping", id = "end" });
        Assert.Equal("pong", (string?)(await sub.ReceiveAsync())["type"]);
        return seqs;
    }

    [Fact]
    public async Task Since_older_than_retention_is_not_recovered_and_delivers_from_the_oldest_retained_message()
    {
        const string topic = "retention.since";
        var positions = await TopicWithDeletedStart(topic);
        await using var sub = await Broker.ConnectAsync();
        var subscribed = await sub.SubscribeAsync(topic, "s", new { since = positions[1] }); // seen 0..1; 2..4 are gone
        Assert.False((bool)subscribed["recovered"]!);
        Assert.Equal(Enumerable.Range(5, 5), await ReceiveSeqs(sub, 5));
    }

    [Fact]
    public async Task Since_right_before_the_oldest_retained_message_is_recovered()
    {
        const string topic = "retention.since-edge";
        var positions = await TopicWithDeletedStart(topic);
        await using var sub = await Broker.ConnectAsync();
        var subscribed = await sub.SubscribeAsync(topic, "s", new { since = positions[4] }); // seen 0..4: nothing missed
        Assert.True((bool)subscribed["recovered"]!);
        Assert.Equal(Enumerable.Range(5, 5), await ReceiveSeqs(sub, 5));
    }

    [Fact]
    public async Task Earliest_and_last_start_at_the_new_low_watermark()
    {
        const string topic = "retention.earliest";
        await TopicWithDeletedStart(topic);
        await using var earliest = await Broker.ConnectAsync();
        await earliest.SubscribeAsync(topic, "s", new { from = "earliest" });
        Assert.Equal(Enumerable.Range(5, 5), await ReceiveSeqs(earliest, 5));
        await using var last = await Broker.ConnectAsync();
        await last.SubscribeAsync(topic, "s", new { last = 8 });
        Assert.Equal(Enumerable.Range(5, 5), await ReceiveSeqs(last, 5));
    }
}
