using System.Text.Json.Nodes;
using Broker.Client.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>Durable sessions against a scripted broker: restored subscriptions, commits, no repeats.</summary>
public sealed class SessionTests : IAsyncLifetime
{
    private FakeBroker _fake = null!;

    public async Task InitializeAsync() => _fake = await FakeBroker.StartAsync();

    public async Task DisposeAsync() => await _fake.DisposeAsync();

    private BrokerClient NewClient(bool autoCommit = false) => new(_fake.WsUri, new BrokerClientOptions
    {
        Session = "sess-1",
        AutoCommit = autoCommit,
        AutoCommitInterval = TimeSpan.FromMilliseconds(50),
        Reconnect = Waits.Fast,
    });

    private static JsonObject Restored(string topic, string head, bool recovered = true) =>
        new() { ["type"] = "subscribed", ["topic"] = topic, ["pos"] = head, ["recovered"] = recovered };

    private static Task PongAsync(FakeConnection c, JsonObject ping) => c.SendAsync(new JsonObject { ["type"] = "pong", ["id"] = (string?)ping["id"] });

    [Fact]
    public async Task Restored_subscriptions_reach_their_subscription_objects_and_only_the_others_are_subscribed()
    {
        await using var client = NewClient();
        var chat = client.Subscribe("chat");
        var news = client.Subscribe("news");
        BrokerSubscription? orphan = null;
        client.SubscriptionRestored += (_, s) => orphan = s;
        await client.ConnectAsync().WaitAsync(FakeBroker.Timeout);

        var c1 = await _fake.NextConnectionAsync();
        Assert.Equal("sess-1", c1.Query["session"]);
        var ping = await c1.ExpectAsync("ping"); // the sync: its pong comes after every restored subscription
        await c1.SendAsync(Restored("chat", Pos.Of(9)));
        await c1.MessageAsync("chat", Pos.Of(5), "restored from the commit");
        await c1.SendAsync(Restored("audit", Pos.Of(3)));
        await PongAsync(c1, ping);

        var subscribe = await c1.ExpectAsync("subscribe");
        Assert.Equal("news", (string?)subscribe["topic"]); // chat was restored: not subscribed again
        Assert.True(await c1.SilentForAsync(TimeSpan.FromMilliseconds(200)));
        await c1.SubscribedAsync(subscribe, Pos.Of(1));

        await using var messages = chat.GetAsyncEnumerator();
        Assert.Equal("restored from the commit", (await messages.NextAsync()).Data.GetString());
        await c1.MessageAsync("news", Pos.Of(2), "live");
        await using (var newsMessages = news.GetAsyncEnumerator()) Assert.Equal("live", (await newsMessages.NextAsync()).Data.GetString());
        Assert.Equal(Pos.Of(1), news.Head);
        // A topic the session holds that this process did not declare: handed over by event and by Subscribe.
        Assert.NotNull(orphan);
        Assert.Equal("audit", orphan.Topic);
        Assert.True(orphan.RestoredBySession);
        Assert.Same(orphan, client.Subscribe("audit"));
        Assert.Contains(orphan, client.Subscriptions);
    }

    [Fact]
    public async Task After_a_reconnect_the_session_resumes_from_its_commit_and_what_was_delivered_is_not_delivered_again()
    {
        await using var client = NewClient();
        var chat = client.Subscribe("chat");
        await client.ConnectAsync().WaitAsync(FakeBroker.Timeout);
        var c1 = await _fake.NextConnectionAsync();
        var ping = await c1.ExpectAsync("ping");
        await c1.SendAsync(Restored("chat", Pos.Of(0)));
        await PongAsync(c1, ping);
        await using var messages = chat.GetAsyncEnumerator();
        for (var i = 1; i <= 3; i++) await c1.MessageAsync("chat", Pos.Of(i), i);
        var first = await messages.NextAsync();
        await chat.CommitAsync(first);
        var commit = await c1.ExpectAsync("commit");
        Assert.Equal(Pos.Of(1), (string?)commit["pos"]);
        Assert.Equal(2, (await messages.NextAsync()).Data.GetInt32());
        Assert.Equal(3, (await messages.NextAsync()).Data.GetInt32());

        c1.Abort();
        var c2 = await _fake.NextConnectionAsync();
        var ping2 = await c2.ExpectAsync("ping");
        // The broker resumes after the commit (1): 2 and 3 come again, then 4 is new.
        await c2.SendAsync(Restored("chat", Pos.Of(4)));
        for (var i = 2; i <= 4; i++) await c2.MessageAsync("chat", Pos.Of(i), i);
        await PongAsync(c2, ping2);
        Assert.Equal(4, (await messages.NextAsync()).Data.GetInt32());
        // The last commit is sent again (a commit has no reply: it may have been lost with the connection).
        var recommit = await c2.ExpectAsync("commit");
        Assert.Equal(Pos.Of(1), (string?)recommit["pos"]);
    }

    [Fact]
    public async Task A_session_restore_that_lost_messages_delivers_everything_it_has_and_marks_the_gap()
    {
        await using var client = NewClient();
        var chat = client.Subscribe("chat");
        await client.ConnectAsync().WaitAsync(FakeBroker.Timeout);
        var c1 = await _fake.NextConnectionAsync();
        var ping = await c1.ExpectAsync("ping");
        await c1.SendAsync(Restored("chat", Pos.Of(0)));
        await PongAsync(c1, ping);
        await using var messages = chat.GetAsyncEnumerator();
        await c1.MessageAsync("chat", Pos.Of(50), 50);
        await messages.NextAsync();

        c1.Abort();
        var c2 = await _fake.NextConnectionAsync();
        var ping2 = await c2.ExpectAsync("ping");
        // The log was reset: positions start again below what this process saw; nothing may be dropped.
        await c2.SendAsync(Restored("chat", Pos.Of(2), recovered: false));
        await c2.MessageAsync("chat", Pos.Of(1), 1);
        await PongAsync(c2, ping2);
        var m = await messages.NextAsync();
        Assert.Equal(1, m.Data.GetInt32());
        Assert.True(m.AfterGap);
    }

    [Fact]
    public async Task AutoCommit_commits_what_the_application_has_processed()
    {
        await using var client = NewClient(autoCommit: true);
        var chat = client.Subscribe("chat");
        await client.ConnectAsync().WaitAsync(FakeBroker.Timeout);
        var c1 = await _fake.NextConnectionAsync();
        var ping = await c1.ExpectAsync("ping");
        await c1.SendAsync(Restored("chat", Pos.Of(0)));
        await PongAsync(c1, ping);
        await c1.MessageAsync("chat", Pos.Of(1), 1);
        await c1.MessageAsync("chat", Pos.Of(2), 2);
        await using var messages = chat.GetAsyncEnumerator();
        await messages.NextAsync();
        // Message 1 is being processed: nothing is committed yet.
        Assert.True(await c1.SilentForAsync(TimeSpan.FromMilliseconds(200)));
        await messages.NextAsync(); // asking for the next one means 1 is done
        Assert.Equal(Pos.Of(1), (string?)(await c1.ExpectAsync("commit"))["pos"]);
        Assert.True(await c1.SilentForAsync(TimeSpan.FromMilliseconds(200)), "a position is committed once");
    }

    [Fact]
    public async Task An_unsubscribe_while_disconnected_is_told_to_the_session_after_the_reconnect()
    {
        var client = NewClient();
        var states = new Waits.StateLog(client);
        await using var _ = client;
        var chat = client.Subscribe("chat");
        await client.ConnectAsync().WaitAsync(FakeBroker.Timeout);
        var c1 = await _fake.NextConnectionAsync();
        var ping = await c1.ExpectAsync("ping");
        await c1.SendAsync(Restored("chat", Pos.Of(0)));
        await PongAsync(c1, ping);

        c1.Abort();
        await states.WaitForAsync(BrokerConnectionState.Disconnected);
        await chat.DisposeAsync();
        var c2 = await _fake.NextConnectionAsync();
        var ping2 = await c2.ExpectAsync("ping");
        await c2.SendAsync(Restored("chat", Pos.Of(0)));
        await c2.MessageAsync("chat", Pos.Of(1), "not for anyone");
        await PongAsync(c2, ping2);
        var unsubscribe = await c2.ExpectAsync("unsubscribe");
        Assert.Equal("chat", (string?)unsubscribe["topic"]);
        Assert.Empty(client.Subscriptions);
    }
}
