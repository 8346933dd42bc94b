using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Broker.Client.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>The client against a scripted broker: reconnects, resends, resumes, stops.</summary>
public sealed class ReconnectTests : IAsyncLifetime
{
    private FakeBroker _fake = null!;

    public async Task InitializeAsync() => _fake = await FakeBroker.StartAsync();

    public async Task DisposeAsync() => await _fake.DisposeAsync();

    private Task<BrokerClient> Connect(BrokerClientOptions? options = null) =>
        BrokerClient.ConnectAsync(_fake.WsUri, options ?? new BrokerClientOptions { Reconnect = Waits.Fast });

    [Fact]
    public async Task Unacknowledged_publishes_are_resent_after_a_drop_with_the_same_ids_and_each_completes_with_one_ack()
    {
        await using var client = await Connect(new BrokerClientOptions { ClientId = "svc-1", Reconnect = Waits.Fast });
        var states = new Waits.StateLog(client);
        var c1 = await _fake.NextConnectionAsync();
        Assert.Equal("svc-1", c1.Query["client"]);

        var first = client.PublishAsync("orders", Json.Of(new { n = 1 }));
        var second = client.PublishAsync("orders", Json.Of(new { n = 2 }), key: "k");
        var p1 = await c1.ExpectAsync("publish");
        var p2 = await c1.ExpectAsync("publish");
        await c1.AckAsync(p1, Pos.Of(1));
        Assert.Equal(new Ack("orders", Pos.Of(1)), await first.WaitAsync(FakeBroker.Timeout));

        c1.Abort(); // the node died before acknowledging the second publish
        var c2 = await _fake.NextConnectionAsync();
        Assert.Equal("svc-1", c2.Query["client"]);
        var resent = await c2.ExpectAsync("publish");
        Assert.Equal(p2.ToJsonString(), resent.ToJsonString()); // same id, same data, same key
        Assert.True(await c2.SilentForAsync(TimeSpan.FromMilliseconds(200)), "only the unacknowledged publish is resent");
        await c2.AckAsync(resent, Pos.Of(2));
        Assert.Equal(Pos.Of(2), (await second.WaitAsync(FakeBroker.Timeout)).Pos);

        var dropped = await states.WaitForAsync(BrokerConnectionState.Disconnected);
        Assert.Equal(1006, dropped.CloseCode);
        Assert.NotNull(dropped.RetryIn);
        Assert.Equal(0, client.PendingPublishes);
    }

    [Fact]
    public async Task Publishes_wait_in_a_bounded_queue_while_disconnected_and_go_out_in_order_after_the_reconnect()
    {
        await using var client = await Connect(new BrokerClientOptions
        {
            MaxPendingPublishes = 3,
            Reconnect = new ReconnectOptions { InitialDelay = TimeSpan.FromMilliseconds(300), MaxDelay = TimeSpan.FromMilliseconds(300), Jitter = 0 },
        });
        var states = new Waits.StateLog(client);
        var c1 = await _fake.NextConnectionAsync();
        var a = client.PublishAsync("t", Json.Of("a"));
        var b = client.PublishAsync("t", Json.Of("b"));
        var sent = new[] { await c1.ExpectAsync("publish"), await c1.ExpectAsync("publish") };

        c1.Abort();
        await states.WaitForAsync(BrokerConnectionState.Disconnected);
        var c = client.PublishAsync("t", Json.Of("c")); // queued while disconnected
        var full = Assert.Throws<PublishQueueFullException>(() => { _ = client.PublishAsync("t", Json.Of("d")); });
        Assert.Equal(3, full.Capacity);

        var c2 = await _fake.NextConnectionAsync();
        var resent = new[] { await c2.ExpectAsync("publish"), await c2.ExpectAsync("publish"), await c2.ExpectAsync("publish") };
        Assert.Equal(["\"a\"", "\"b\"", "\"c\""], resent.Select(p => p["data"]!.ToJsonString()));
        Assert.Equal(sent.Select(p => (string?)p["id"]), resent.Take(2).Select(p => (string?)p["id"]));
        for (var i = 0; i < 3; i++) await c2.AckAsync(resent[i], Pos.Of(i + 1));
        await Task.WhenAll(a, b, c).WaitAsync(FakeBroker.Timeout);
        // Room again.
        _ = client.PublishAsync("t", Json.Of("e"));
    }

    [Fact]
    public async Task A_subscription_resumes_after_its_last_message_on_every_reconnect_so_each_message_is_seen_once_in_order()
    {
        await using var client = await Connect();
        var c1 = await _fake.NextConnectionAsync();
        var subscribing = client.SubscribeAsync("chat", new SubscribeOptions { Key = "room-1" });
        var quiet = client.SubscribeAsync("quiet");
        var req = await c1.ExpectAsync("subscribe");
        Assert.Null(req["since"]);
        Assert.Equal("room-1", (string?)req["key"]);
        await c1.SubscribedAsync(req, Pos.Of(10));
        await c1.SubscribedAsync(await c1.ExpectAsync("subscribe"), Pos.Of(100));
        await using var chat = await subscribing.WaitAsync(FakeBroker.Timeout);
        await using var _ = await quiet.WaitAsync(FakeBroker.Timeout);
        await using var messages = chat.GetAsyncEnumerator();

        await c1.MessageAsync("chat", Pos.Of(11), 11);
        await c1.MessageAsync("chat", Pos.Of(12), 12);
        Assert.Equal(11, (await messages.NextAsync()).Data.GetInt32());
        Assert.Equal(12, (await messages.NextAsync()).Data.GetInt32());

        await c1.CloseAsync(1001, "server shutting down");
        var c2 = await _fake.NextConnectionAsync();
        var resumes = new[] { await c2.ExpectAsync("subscribe"), await c2.ExpectAsync("subscribe") }.ToDictionary(r => (string)r["topic"]!);
        Assert.Equal(Pos.Of(12), (string?)resumes["chat"]["since"]);
        Assert.Equal("room-1", (string?)resumes["chat"]["key"]); // the same filter
        Assert.Equal(Pos.Of(100), (string?)resumes["quiet"]["since"]); // no message yet: from the head it started at
        await c2.SubscribedAsync(resumes["chat"], Pos.Of(13), recovered: true);
        await c2.SubscribedAsync(resumes["quiet"], Pos.Of(100), recovered: true);
        await c2.MessageAsync("chat", Pos.Of(13), 13);
        Assert.Equal(13, (await messages.NextAsync()).Data.GetInt32());

        await c2.CloseAsync(1013, "slow_consumer");
        var c3 = await _fake.NextConnectionAsync();
        var again = new[] { await c3.ExpectAsync("subscribe"), await c3.ExpectAsync("subscribe") }.Single(r => (string?)r["topic"] == "chat");
        Assert.Equal(Pos.Of(13), (string?)again["since"]);
        Assert.Equal(Pos.Of(13), chat.LastPos);
    }

    [Fact]
    public async Task A_resume_that_lost_messages_is_surfaced_as_recovered_false_and_marks_the_next_message()
    {
        await using var client = await Connect();
        var c1 = await _fake.NextConnectionAsync();
        var subscribing = client.SubscribeAsync("t", new SubscribeOptions { From = StartFrom.Earliest });
        var req = await c1.ExpectAsync("subscribe");
        Assert.Equal("earliest", (string?)req["from"]);
        await c1.SubscribedAsync(req, Pos.Of(3));
        await using var sub = await subscribing.WaitAsync(FakeBroker.Timeout);
        var resumed = new List<SubscriptionResumedEventArgs>();
        sub.Resumed += (_, e) => resumed.Add(e);
        await using var messages = sub.GetAsyncEnumerator();
        await c1.MessageAsync("t", Pos.Of(1), "a");
        Assert.False((await messages.NextAsync()).AfterGap);

        c1.Abort();
        var c2 = await _fake.NextConnectionAsync();
        var resume = await c2.ExpectAsync("subscribe");
        Assert.Equal(Pos.Of(1), (string?)resume["since"]);
        Assert.Null(resume["from"]); // since wins
        await c2.SubscribedAsync(resume, Pos.Of(50), recovered: false); // retention deleted 2..39
        await c2.MessageAsync("t", Pos.Of(40), "b");
        await c2.MessageAsync("t", Pos.Of(41), "c");
        var afterGap = await messages.NextAsync();
        Assert.True(afterGap.AfterGap);
        Assert.False((await messages.NextAsync()).AfterGap);
        var e = Assert.Single(resumed);
        Assert.False(e.Recovered);
        Assert.False(e.IsFirst);
        Assert.False(sub.Recovered);
    }

    [Theory]
    [InlineData(1008, "session_taken_over")]
    [InlineData(1009, "frame larger than 65536 bytes")]
    public async Task A_close_that_forbids_retrying_stops_the_client_and_says_why(int code, string reason)
    {
        var client = await Connect();
        var c1 = await _fake.NextConnectionAsync();
        var subscribing = client.SubscribeAsync("t");
        await c1.SubscribedAsync(await c1.ExpectAsync("subscribe"), Pos.Of(1));
        var sub = await subscribing.WaitAsync(FakeBroker.Timeout);
        var waiting = client.PublishAsync("t", Json.Of(1));
        await c1.ExpectAsync("publish");

        await c1.CloseAsync(code, reason);
        var info = await client.Completion.WaitAsync(FakeBroker.Timeout);
        Assert.Equal(code, info.CloseCode);
        Assert.Equal(reason, info.Reason);
        Assert.Equal(BrokerConnectionState.Closed, client.State);
        Assert.Equal(code, (await Assert.ThrowsAsync<BrokerClosedException>(() => waiting)).Info.CloseCode);
        await Assert.ThrowsAsync<BrokerClosedException>(async () =>
        {
            await foreach (var _ in sub) { }
        });
        Assert.Throws<BrokerClosedException>(() => { _ = client.PublishAsync("t", Json.Of(2)); });
        Assert.True(await _fake.NoConnectionWithinAsync(TimeSpan.FromMilliseconds(300)), "it must not reconnect");
        await client.DisposeAsync();
    }

    [Fact]
    public async Task A_refused_upgrade_stops_on_400_and_is_retried_after_Retry_After_on_503()
    {
        _fake.RefuseUpgrades((400, null));
        var refused = await Assert.ThrowsAsync<BrokerClosedException>(() => Connect());
        Assert.Equal(400, refused.Info.HttpStatus);

        _fake.RefuseUpgrades((503, "1"));
        var client = new BrokerClient(_fake.WsUri, new BrokerClientOptions { Reconnect = Waits.Fast });
        var states = new Waits.StateLog(client);
        await using (client)
        {
            await client.ConnectAsync().WaitAsync(FakeBroker.Timeout);
            var waited = await states.WaitForAsync(BrokerConnectionState.Disconnected);
            Assert.Equal(503, waited.Close!.HttpStatus);
            Assert.Equal(TimeSpan.FromSeconds(1), waited.RetryIn); // the broker's hint beats the 10-50 ms backoff
            await _fake.NextConnectionAsync();
        }
    }

    [Fact]
    public async Task The_policy_gives_up_after_MaxAttempts_failed_attempts()
    {
        _fake.RefuseUpgrades((502, null), (502, null), (502, null));
        var e = await Assert.ThrowsAsync<BrokerClosedException>(() => Connect(new BrokerClientOptions
        {
            Reconnect = new ReconnectOptions { InitialDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(10), MaxAttempts = 3 },
        }));
        Assert.Contains("gave up after 3", e.Info.Reason);
        Assert.Equal(3, _fake.Refused);
    }

    [Fact]
    public async Task Transient_refusals_are_resent_with_the_same_id_and_other_refusals_fail_the_publish()
    {
        await using var client = await Connect();
        var c1 = await _fake.NextConnectionAsync();
        var retried = client.PublishAsync("t", Json.Of(1));
        var refused = client.PublishAsync("ro", Json.Of(2));
        var p1 = await c1.ExpectAsync("publish");
        var p2 = await c1.ExpectAsync("publish");
        await c1.SendAsync(new JsonObject { ["type"] = "error", ["id"] = (string?)p1["id"], ["code"] = "unavailable", ["message"] = "the log is unavailable; retry" });
        await c1.SendAsync(new JsonObject { ["type"] = "error", ["id"] = (string?)p2["id"], ["code"] = "forbidden", ["message"] = "topic ro is read-only" });
        var error = await Assert.ThrowsAsync<BrokerErrorException>(() => refused.WaitAsync(FakeBroker.Timeout));
        Assert.Equal("forbidden", error.Code);
        var again = await c1.ExpectAsync("publish");
        Assert.Equal((string?)p1["id"], (string?)again["id"]);
        // rate_limited with a hint: resent after it.
        await c1.SendAsync(new JsonObject { ["type"] = "error", ["id"] = (string?)p1["id"], ["code"] = "rate_limited", ["message"] = "slow down", ["retry_after_ms"] = 300 });
        Assert.True(await c1.SilentForAsync(TimeSpan.FromMilliseconds(200)), "the hint is respected");
        await c1.AckAsync(await c1.ExpectAsync("publish"), Pos.Of(7));
        Assert.Equal(Pos.Of(7), (await retried.WaitAsync(FakeBroker.Timeout)).Pos);
    }

    [Fact]
    public async Task Batched_frames_deliver_messages_and_acks_in_their_order()
    {
        await using var client = await Connect(new BrokerClientOptions { Batch = true, Reconnect = Waits.Fast });
        var c1 = await _fake.NextConnectionAsync();
        Assert.Equal("1", c1.Query["batch"]);
        var subscribing = client.SubscribeAsync("t");
        await c1.SubscribedAsync(await c1.ExpectAsync("subscribe"), Pos.Of(0));
        await using var sub = await subscribing.WaitAsync(FakeBroker.Timeout);
        var published = client.PublishAsync("t", Json.Of("x"));
        var p = await c1.ExpectAsync("publish");
        await c1.SendAsync(
            new JsonObject { ["type"] = "message", ["topic"] = "t", ["pos"] = Pos.Of(1), ["ts"] = 1, ["data"] = "x" },
            new JsonObject { ["type"] = "ack", ["id"] = (string?)p["id"], ["topic"] = "t", ["pos"] = Pos.Of(1) },
            new JsonObject { ["type"] = "message", ["topic"] = "t", ["pos"] = Pos.Of(2), ["ts"] = 2, ["data"] = "y", ["future_field"] = true });
        Assert.Equal(Pos.Of(1), (await published.WaitAsync(FakeBroker.Timeout)).Pos);
        await using var messages = sub.GetAsyncEnumerator();
        Assert.Equal("x", (await messages.NextAsync()).Data.GetString());
        Assert.Equal("y", (await messages.NextAsync()).Data.GetString());
    }

    [Fact]
    public async Task A_full_subscription_buffer_holds_the_reading_back_instead_of_dropping_messages()
    {
        await using var client = await Connect();
        var c1 = await _fake.NextConnectionAsync();
        var subscribing = client.SubscribeAsync("t", new SubscribeOptions { BufferCapacity = 2 });
        await c1.SubscribedAsync(await c1.ExpectAsync("subscribe"), Pos.Of(0));
        await using var sub = await subscribing.WaitAsync(FakeBroker.Timeout);
        for (var i = 1; i <= 50; i++) await c1.MessageAsync("t", Pos.Of(i), i);
        var published = client.PublishAsync("t", Json.Of("after"));
        await c1.AckAsync(await c1.ExpectAsync("publish"), Pos.Of(51));
        // The ack is behind 48 messages the buffer has no room for: it waits for the application.
        await Task.Delay(200);
        Assert.False(published.IsCompleted);
        await using var messages = sub.GetAsyncEnumerator();
        for (var i = 1; i <= 50; i++) Assert.Equal(i, (await messages.NextAsync()).Data.GetInt32());
        await published.WaitAsync(FakeBroker.Timeout);
    }

    [Fact]
    public async Task A_publish_larger_than_a_frame_is_refused_without_being_sent()
    {
        await using var client = await Connect(new BrokerClientOptions { MaxFrameBytes = 1024, Reconnect = Waits.Fast });
        var c1 = await _fake.NextConnectionAsync();
        var e = await Assert.ThrowsAsync<BrokerErrorException>(() => client.PublishAsync("t", Json.Of(new string('x', 2000))));
        Assert.Equal("too_large", e.Code);
        Assert.Throws<ArgumentException>(() => { _ = client.PublishAsync("t", "{not json"u8.ToArray()); });
        Assert.Throws<ArgumentException>(() => { _ = client.PublishAsync("bad topic", Json.Of(1)); });
        Assert.True(await c1.SilentForAsync(TimeSpan.FromMilliseconds(200)));
    }

    [Fact]
    public async Task Each_reconnect_goes_to_the_next_endpoint()
    {
        await using var other = await FakeBroker.StartAsync();
        await using var client = await BrokerClient.ConnectAsync([_fake.WsUri, other.WsUri], new BrokerClientOptions { Reconnect = Waits.Fast });
        var c1 = await _fake.NextConnectionAsync();
        var waiting = client.PublishAsync("t", Json.Of(1));
        await c1.ExpectAsync("publish");
        await c1.CloseAsync(1001, "server shutting down");
        var c2 = await other.NextConnectionAsync();
        Assert.Equal(other.WsUri.Port, client.Endpoint.Port);
        await c2.AckAsync(await c2.ExpectAsync("publish"), Pos.Of(1));
        await waiting.WaitAsync(FakeBroker.Timeout);
    }

    [Fact]
    public async Task Disposing_closes_normally_fails_waiting_publishes_and_ends_subscriptions()
    {
        var client = await Connect();
        var c1 = await _fake.NextConnectionAsync();
        var subscribing = client.SubscribeAsync("t");
        await c1.SubscribedAsync(await c1.ExpectAsync("subscribe"), Pos.Of(0));
        var sub = await subscribing.WaitAsync(FakeBroker.Timeout);
        var reading = Task.Run(async () =>
        {
            var n = 0;
            await foreach (var _ in sub) n++;
            return n;
        });
        var waiting = client.PublishAsync("t", Json.Of(1));
        await c1.ExpectAsync("publish");

        await client.DisposeAsync().AsTask().WaitAsync(FakeBroker.Timeout);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting);
        Assert.Equal(0, await reading.WaitAsync(FakeBroker.Timeout));
        await c1.Done.WaitAsync(FakeBroker.Timeout);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, c1.ClientCloseStatus);
        Assert.Equal(BrokerConnectionState.Closed, client.State);
        Assert.Throws<ObjectDisposedException>(() => { _ = client.PublishAsync("t", Json.Of(2)); });
    }
}
