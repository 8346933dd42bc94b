using System.Diagnostics;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary><c>subscribe</c> with <c>key</c>: only messages with that Kafka key, live and in replay.</summary>
public sealed class KeyFilterTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    private Task Kcat(string topic, params string[] lines) =>
        Infrastructure.Kcat.ProduceAsync(Broker.KafkaBootstrap, topic, ["-K", ":"], lines);

    /// <summary>The <c>n</c> fields of the next messages until a ping is answered (so nothing else was delivered).</summary>
    private static async Task<List<string>> Drain(WsClient sub, int expected)
    {
        var seen = new List<string>();
        while (seen.Count < expected) seen.Add(Label(await sub.ExpectAsync("message")));
        await sub.SendAsync(new { type = "ping", id = "end" });
        var f = await sub.ReceiveAsync();
        Assert.True((string?)f["type"] == "pong", "unexpected " + f.ToJsonString());
        return seen;
    }

    private static string Label(JsonObject m) => $"{(string?)m["key"]}/{(string?)m["data"]!["n"]}";

    [Fact]
    public async Task A_key_filtered_subscriber_gets_only_that_key_live_from_websocket_and_kcat_publishers()
    {
        const string topic = "keys.live";
        await using var all = await Broker.ConnectAsync();
        await using var onlyA = await Broker.ConnectAsync();
        await all.SubscribeAsync(topic, "s");
        await onlyA.SubscribeAsync(topic, "s", new { key = "a" });
        await using var pub = await Broker.ConnectAsync();
        await pub.PublishAsync(topic, new { n = "1" }, "p1", key: "a");
        await pub.PublishAsync(topic, new { n = "2" }, "p2", key: "b");
        await pub.PublishAsync(topic, new { n = "3" }, "p3");
        await pub.PublishAsync(topic, new { n = "4" }, "p4", key: "ab");
        await Kcat(topic, "b:{\"n\":\"5\"}", "a:{\"n\":\"6\"}");

        Assert.Equal(["a/1", "a/6"], await Drain(onlyA, 2));
        Assert.Equal(["a/1", "b/2", "/3", "ab/4", "b/5", "a/6"], await Drain(all, 6));
    }

    [Fact]
    public async Task Replay_applies_the_filter_to_history_and_last_N_counts_the_last_N_messages_of_the_topic()
    {
        const string topic = "keys.replay";
        await using var pub = await Broker.ConnectAsync();
        var p1 = await pub.PublishAsync(topic, new { n = "1" }, "p1", key: "a");
        await pub.PublishAsync(topic, new { n = "2" }, "p2", key: "b");
        await Kcat(topic, "a:{\"n\":\"3\"}", "b:{\"n\":\"4\"}", "b:{\"n\":\"5\"}", "a:{\"n\":\"6\"}");

        await using var earliest = await Broker.ConnectAsync();
        await earliest.SubscribeAsync(topic, "s", new { from = "earliest", key = "a" });
        Assert.Equal(["a/1", "a/3", "a/6"], await Drain(earliest, 3));

        await using var since = await Broker.ConnectAsync();
        var subscribed = await since.SubscribeAsync(topic, "s", new { since = p1, key = "b" });
        Assert.True((bool)subscribed["recovered"]!);
        Assert.Equal(["b/2", "b/4", "b/5"], await Drain(since, 3));

        // last: 3 = the last three messages of the topic (4, 5, 6), of which only 6 has key a.
        await using var last = await Broker.ConnectAsync();
        await last.SubscribeAsync(topic, "s", new { last = 3, key = "a" });
        Assert.Equal(["a/6"], await Drain(last, 1));

        // Then live, still filtered, and handed over without gap or duplicate.
        await pub.PublishAsync(topic, new { n = "7" }, "p7", key: "b");
        await pub.PublishAsync(topic, new { n = "8" }, "p8", key: "a");
        Assert.Equal(["a/8"], await Drain(earliest, 1));
        Assert.Equal(["b/7"], await Drain(since, 1));
        Assert.Equal(["a/8"], await Drain(last, 1));
    }

    [Fact]
    public async Task A_key_filter_with_a_durable_session_is_accepted_and_restored_on_reconnect()
    {
        // (Sessions/SessionTests covers headers, commits and other nodes on every session store.)
        const string topic = "keys.session";
        var query = "?session=keys-session-" + Guid.NewGuid().ToString("N");
        await using var pub = await Broker.ConnectAsync();
        await using (var client = await Broker.ConnectAsync(query))
        {
            await client.SubscribeAsync(topic, "s", new { key = "a" });
            await pub.PublishAsync(topic, new { n = "1" }, "p1", key: "b");
            await pub.PublishAsync(topic, new { n = "2" }, "p2", key: "a");
            Assert.Equal(["a/2"], await Drain(client, 1));
        }
        await pub.PublishAsync(topic, new { n = "3" }, "p3", key: "a");
        await pub.PublishAsync(topic, new { n = "4" }, "p4", key: "b");

        // Nothing was committed: the restored subscription starts where it started, still filtered.
        await using var again = await Broker.ConnectAsync(query);
        var restored = await again.ExpectAsync("subscribed");
        Assert.Equal(topic, (string?)restored["topic"]);
        Assert.Equal(["a/2", "a/3"], await Drain(again, 2));
    }
}
