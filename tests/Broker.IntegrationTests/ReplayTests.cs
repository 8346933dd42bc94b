using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

public sealed class ReplayTests(UnlimitedBrokerFixture fixture) : IClassFixture<UnlimitedBrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    /// <summary>Publishes seq 0..count-1 pipelined (all sent before acks are awaited); returns the ack positions by seq.</summary>
    private static async Task<string[]> PublishSequence(WsClient pub, string topic, int from, int count, TaskCompletionSource? halfway = null)
    {
        var sender = Task.Run(async () =>
        {
            for (var i = from; i < from + count; i++)
                await pub.SendAsync(new { type = "publish", id = $"p{i}", topic, data = new { seq = i } });
        });
        var positions = new string[count];
        for (var n = 0; n < count; n++)
        {
            var ack = await pub.ReceiveAsync();
            Assert.Equal("ack", (string?)ack["type"]);
            var seq = int.Parse(((string)ack["id"]!)[1..]);
            positions[seq - from] = (string)ack["pos"]!;
            if (n == count / 2) halfway?.TrySetResult();
        }
        await sender;
        return positions;
    }

    private static async Task<List<int>> ReceiveSeqs(WsClient sub, int count)
    {
        var seqs = new List<int>(count);
        while (seqs.Count < count)
        {
            var m = await sub.ExpectAsync("message");
            seqs.Add((int)m["data"]!["seq"]!);
        }
        return seqs;
    }

    [Fact]
    public async Task Resume_from_the_middle_while_publishing_delivers_everything_after_the_position_exactly_once_in_order()
    {
        const string topic = "replay.handover";
        // A live subscriber keeps the node's feed at the head, so the resuming one must catch up
        // from the log with a separate reader and hand over to the running feed.
        await using var live = await Broker.ConnectAsync();
        await live.SubscribeAsync(topic, "live");
        await using var pub = await Broker.ConnectAsync();
        var first = await PublishSequence(pub, topic, 0, 5_000);
        var resumeAfter = 2_499; // the subscriber has seen seq 0..2499

        // Publish the second half while the subscriber resumes from the middle.
        var halfway = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var publishing = PublishSequence(pub, topic, 5_000, 5_000, halfway);
        await halfway.Task.WaitAsync(TimeSpan.FromMinutes(1)); // publishing is under way (half of it acknowledged)
        Assert.False(publishing.IsCompleted);
        await using var sub = await Broker.ConnectAsync();
        var subscribed = await sub.SubscribeAsync(topic, "s", new { since = first[resumeAfter] });
        Assert.True((bool)subscribed["recovered"]!);
        await publishing;

        var seqs = await ReceiveSeqs(sub, 10_000 - (resumeAfter + 1));
        Assert.Equal(Enumerable.Range(resumeAfter + 1, 10_000 - (resumeAfter + 1)), seqs);
        Assert.Equal(Enumerable.Range(0, 10_000), await ReceiveSeqs(live, 10_000));
        // Nothing more: a ping is answered with no message before it.
        await sub.SendAsync(new { type = "ping", id = "end" });
        Assert.Equal("pong", (string?)(await sub.ReceiveAsync())["type"]);
    }

    [Fact]
    public async Task Last_N_delivers_the_last_N_then_live()
    {
        const string topic = "replay.last";
        await using var pub = await Broker.ConnectAsync();
        await PublishSequence(pub, topic, 0, 100);
        await using var sub = await Broker.ConnectAsync();
        var subscribed = await sub.SubscribeAsync(topic, "s", new { last = 10 });
        Assert.Null(subscribed["recovered"]);
        Assert.Equal(Enumerable.Range(90, 10), await ReceiveSeqs(sub, 10));
        await PublishSequence(pub, topic, 100, 5);
        Assert.Equal(Enumerable.Range(100, 5), await ReceiveSeqs(sub, 5));
    }

    [Fact]
    public async Task Earliest_delivers_history_then_live_and_latest_only_live()
    {
        const string topic = "replay.earliest";
        await using var pub = await Broker.ConnectAsync();
        await PublishSequence(pub, topic, 0, 50);
        await using var early = await Broker.ConnectAsync();
        await using var late = await Broker.ConnectAsync();
        await early.SubscribeAsync(topic, "s", new { from = "earliest" });
        var head = await late.SubscribeAsync(topic, "s");
        Assert.Equal(Enumerable.Range(0, 50), await ReceiveSeqs(early, 50));

        var positions = await PublishSequence(pub, topic, 50, 20);
        Assert.Equal(Enumerable.Range(50, 20), await ReceiveSeqs(early, 20));
        Assert.Equal(Enumerable.Range(50, 20), await ReceiveSeqs(late, 20));
        Assert.NotEqual((string?)head["pos"], positions[0]);
    }

    [Fact]
    public async Task Since_the_head_position_delivers_only_newer_messages_and_positions_are_stable()
    {
        const string topic = "replay.since-head";
        await using var pub = await Broker.ConnectAsync();
        var positions = await PublishSequence(pub, topic, 0, 10);
        await using var sub = await Broker.ConnectAsync();
        var subscribed = await sub.SubscribeAsync(topic, "s", new { since = positions[9] });
        Assert.Equal(positions[9], (string?)subscribed["pos"]);
        Assert.True((bool)subscribed["recovered"]!);
        var more = await PublishSequence(pub, topic, 10, 3);
        var received = new List<JsonObject>();
        for (var i = 0; i < 3; i++) received.Add(await sub.ExpectAsync("message"));
        Assert.Equal(more, received.Select(m => (string)m["pos"]!));
    }

    [Fact]
    public async Task Many_subscribers_each_receive_everything_in_the_same_order()
    {
        const string topic = "fanout.many";
        const int subscribers = 50, messages = 500;
        var subs = new List<WsClient>();
        try
        {
            for (var i = 0; i < subscribers; i++)
            {
                var c = await Broker.ConnectAsync();
                subs.Add(c);
                await c.SubscribeAsync(topic, "s");
            }
            await using var pub = await Broker.ConnectAsync();
            await PublishSequence(pub, topic, 0, messages);
            var all = await Task.WhenAll(subs.Select(s => ReceiveSeqs(s, messages)));
            foreach (var seqs in all) Assert.Equal(Enumerable.Range(0, messages), seqs);
        }
        finally
        {
            foreach (var s in subs) await s.DisposeAsync();
        }
    }
}
