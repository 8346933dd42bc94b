using Broker.Client;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary><c>subscribe</c> with <c>key</c>: only messages with that Kafka key, live and in replay.</summary>
public sealed class KeyFilterTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    private Task Kcat(string topic, params string[] lines) =>
        Infrastructure.Kcat.ProduceAsync(Broker.KafkaBootstrap, topic, ["-K", ":"], lines);

    /// <summary>The key/<c>n</c> labels of the next messages, then checks that nothing else was delivered.</summary>
    private static async Task<List<string>> Drain(BrokerClient client, BrokerSubscription sub, int expected)
    {
        var seen = (await sub.TakeAsync(expected)).Select(m => $"{m.Key}/{m.Str("n")}").ToList();
        await sub.AssertNothingMoreAsync(client);
        return seen;
    }

    [Fact]
    public async Task A_key_filtered_subscriber_gets_only_that_key_live_from_websocket_and_kcat_publishers()
    {
        const string topic = "keys.live";
        await using var all = await Broker.ClientAsync();
        await using var onlyA = await Broker.ClientAsync();
        var allSub = await all.SubscribeWithinAsync(topic);
        var aSub = await onlyA.SubscribeWithinAsync(topic, new SubscribeOptions { Key = "a" });
        await using var pub = await Broker.ClientAsync();
        await pub.PublishJsonAsync(topic, new { n = "1" }, key: "a");
        await pub.PublishJsonAsync(topic, new { n = "2" }, key: "b");
        await pub.PublishJsonAsync(topic, new { n = "3" });
        await pub.PublishJsonAsync(topic, new { n = "4" }, key: "ab");
        await Kcat(topic, "b:{\"n\":\"5\"}", "a:{\"n\":\"6\"}");

        Assert.Equal(["a/1", "a/6"], await Drain(onlyA, aSub, 2));
        Assert.Equal(["a/1", "b/2", "/3", "ab/4", "b/5", "a/6"], await Drain(all, allSub, 6));
    }

    [Fact]
    public async Task Replay_applies_the_filter_to_history_and_last_N_counts_the_last_N_messages_of_the_topic()
    {
        const string topic = "keys.replay";
        await using var pub = await Broker.ClientAsync();
        var p1 = await pub.PublishJsonAsync(topic, new { n = "1" }, key: "a");
        await pub.PublishJsonAsync(topic, new { n = "2" }, key: "b");
        await Kcat(topic, "a:{\"n\":\"3\"}", "b:{\"n\":\"4\"}", "b:{\"n\":\"5\"}", "a:{\"n\":\"6\"}");

        await using var earliest = await Broker.ClientAsync();
        var earliestSub = await earliest.SubscribeWithinAsync(topic, new SubscribeOptions { From = StartFrom.Earliest, Key = "a" });
        Assert.Equal(["a/1", "a/3", "a/6"], await Drain(earliest, earliestSub, 3));

        await using var since = await Broker.ClientAsync();
        var sinceSub = await since.SubscribeWithinAsync(topic, new SubscribeOptions { Since = p1, Key = "b" });
        Assert.True(sinceSub.Recovered);
        Assert.Equal(["b/2", "b/4", "b/5"], await Drain(since, sinceSub, 3));

        // last: 3 = the last three messages of the topic (4, 5, 6), of which only 6 has key a.
        await using var last = await Broker.ClientAsync();
        var lastSub = await last.SubscribeWithinAsync(topic, new SubscribeOptions { Last = 3, Key = "a" });
        Assert.Equal(["a/6"], await Drain(last, lastSub, 1));

        // Then live, still filtered, and handed over without gap or duplicate.
        await pub.PublishJsonAsync(topic, new { n = "7" }, key: "b");
        await pub.PublishJsonAsync(topic, new { n = "8" }, key: "a");
        Assert.Equal(["a/8"], await Drain(earliest, earliestSub, 1));
        Assert.Equal(["b/7"], await Drain(since, sinceSub, 1));
        Assert.Equal(["a/8"], await Drain(last, lastSub, 1));
    }

    [Fact]
    public async Task A_key_filter_with_a_durable_session_is_accepted_and_restored_on_reconnect()
    {
        // (Sessions/SessionTests covers headers, commits and other nodes on every session store.)
        const string topic = "keys.session";
        var options = BrokerClients.Options(session: "keys-session-" + Guid.NewGuid().ToString("N"));
        await using var pub = await Broker.ClientAsync();
        await using (var client = await Broker.ClientAsync(options))
        {
            var sub = await client.SubscribeWithinAsync(topic, new SubscribeOptions { Key = "a" });
            await pub.PublishJsonAsync(topic, new { n = "1" }, key: "b");
            await pub.PublishJsonAsync(topic, new { n = "2" }, key: "a");
            Assert.Equal(["a/2"], await Drain(client, sub, 1));
        } // disposed without committing (no auto-commit): the session keeps the subscription
        await pub.PublishJsonAsync(topic, new { n = "3" }, key: "a");
        await pub.PublishJsonAsync(topic, new { n = "4" }, key: "b");

        // Nothing was committed: the restored subscription starts where it started, still filtered.
        BrokerSubscription restored = null!;
        var resumes = new List<SubscriptionResumedEventArgs>();
        await using var again = await Broker.ClientAsync(options, c =>
        {
            restored = c.Subscribe(topic); // no key here: the session's stored filter applies
            restored.Resumed += (_, e) => resumes.Add(e);
        });
        Assert.Equal(["a/2", "a/3"], await Drain(again, restored, 2));
        Assert.True(resumes is [{ RestoredBySession: true }], "the session did not restore the subscription");
    }
}
