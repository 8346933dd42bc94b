using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>The bad-input tests share the 2 cores with heavy tests: run their classes one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BadInputCollection
{
    public const string Name = "BadInput";
}

/// <summary>
/// Every bad input of the issue against a real broker: the client gets the protocol's error (or
/// close code), an error leaves the connection open, other clients notice nothing, the server
/// keeps running and nothing acknowledged is lost.
/// </summary>
[Collection(BadInputCollection.Name)]
public sealed class BadInputTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private TestBroker Broker => fixture.Broker;

    /// <summary>Each case: the frame to send ({topic} and {pos} are filled in), the error code, and the id the reply must echo (null: none).</summary>
    private static readonly Dictionary<string, (Func<string> Frame, string Code, string? Id)> Cases = new()
    {
        // Malformed JSON
        ["malformed-unterminated"] = (() => """{"type":"ping","id":"m1" """, "bad_request", null),
        ["malformed-garbage"] = (() => "this is not json", "bad_request", null),
        ["malformed-trailing"] = (() => """{"type":"ping","id":"m2"} {""", "bad_request", null),
        ["malformed-bad-escape"] = (() => """{"type":"ping","id":"\q"}""", "bad_request", null),
        // A JSON value that is not an object
        ["not-object-array"] = (() => """[{"type":"ping","id":"a1"}]""", "bad_request", null),
        ["not-object-number"] = (() => "42", "bad_request", null),
        ["not-object-string"] = (() => "\"ping\"", "bad_request", null),
        ["not-object-null"] = (() => "null", "bad_request", null),
        // Unknown or missing type
        ["unknown-type"] = (() => """{"type":"frobnicate","id":"u1"}""", "bad_request", "u1"),
        ["missing-type"] = (() => """{"id":"u2","topic":"{topic}"}""", "bad_request", "u2"),
        ["type-not-string"] = (() => """{"type":7,"id":"u3"}""", "bad_request", "u3"),
        // Missing or mistyped fields
        ["subscribe-no-topic"] = (() => """{"type":"subscribe","id":"f1"}""", "bad_request", "f1"),
        ["subscribe-topic-number"] = (() => """{"type":"subscribe","id":"f2","topic":42}""", "bad_request", "f2"),
        ["publish-topic-number"] = (() => """{"type":"publish","id":"f3","topic":42,"data":1}""", "bad_request", "f3"),
        ["publish-no-topic"] = (() => """{"type":"publish","id":"f4","data":1}""", "bad_request", "f4"),
        ["publish-no-data"] = (() => """{"type":"publish","id":"f5","topic":"{topic}"}""", "bad_request", "f5"),
        ["unsubscribe-no-topic"] = (() => """{"type":"unsubscribe","id":"f6"}""", "bad_request", "f6"),
        ["id-object"] = (() => """{"type":"ping","id":{"a":1}}""", "bad_request", null),
        ["id-number"] = (() => """{"type":"ping","id":17}""", "bad_request", null),
        ["id-too-long"] = (() => $$"""{"type":"ping","id":"{{new string('i', 65)}}"}""", "bad_request", null),
        ["last-string"] = (() => """{"type":"subscribe","id":"f7","topic":"{topic}","last":"5"}""", "bad_request", "f7"),
        ["last-negative"] = (() => """{"type":"subscribe","id":"f8","topic":"{topic}","last":-1}""", "bad_request", "f8"),
        ["from-unknown"] = (() => """{"type":"subscribe","id":"f9","topic":"{topic}","from":"yesterday"}""", "bad_request", "f9"),
        ["since-garbage"] = (() => """{"type":"subscribe","id":"f10","topic":"{topic}","since":"!!"}""", "bad_request", "f10"),
        // a well-formed position with more partitions than the (single-partition) topic has
        ["since-more-partitions"] = (() => $$"""{"type":"subscribe","id":"f12","topic":"{topic}","since":"{{new Broker.Protocol.Position([1, 1, 1]).Encode()}}"}""", "bad_request", "f12"),
        ["key-number"] = (() => """{"type":"publish","id":"f11","topic":"{topic}","data":1,"key":5}""", "bad_request", "f11"),
        // Topic names that break the rules
        ["subscribe-topic-space"] = (() => """{"type":"subscribe","id":"t1","topic":"a b"}""", "bad_request", "t1"),
        ["subscribe-topic-slash"] = (() => """{"type":"subscribe","id":"t2","topic":"a/b"}""", "bad_request", "t2"),
        ["subscribe-topic-empty"] = (() => """{"type":"subscribe","id":"t3","topic":""}""", "bad_request", "t3"),
        ["subscribe-topic-201"] = (() => $$"""{"type":"subscribe","id":"t4","topic":"{{new string('a', 201)}}"}""", "bad_request", "t4"),
        ["subscribe-topic-dotdot"] = (() => """{"type":"subscribe","id":"t5","topic":".."}""", "bad_request", "t5"),
        ["publish-topic-space"] = (() => """{"type":"publish","id":"t6","topic":"a b","data":1}""", "bad_request", "t6"),
        ["publish-topic-slash"] = (() => """{"type":"publish","id":"t7","topic":"a/b","data":1}""", "bad_request", "t7"),
        ["publish-topic-empty"] = (() => """{"type":"publish","id":"t8","topic":"","data":1}""", "bad_request", "t8"),
        ["publish-topic-201"] = (() => $$"""{"type":"publish","id":"t9","topic":"{{new string('a', 201)}}","data":1}""", "bad_request", "t9"),
        ["publish-topic-10000"] = (() => $$"""{"type":"publish","id":"t10","topic":"{{new string('a', 10_000)}}","data":1}""", "bad_request", "t10"),
        ["unsubscribe-topic-slash"] = (() => """{"type":"unsubscribe","id":"t11","topic":"a/b"}""", "bad_request", "t11"),
        // data over max-data-bytes (60 KiB by default), in a frame under max-frame-bytes (64 KiB)
        ["data-too-large"] = (() => $$"""{"type":"publish","id":"d1","topic":"{topic}","data":"{{new string('x', 61 * 1024)}}"}""", "too_large", "d1"),
        // Unsubscribing from a topic this connection has not subscribed to
        ["unsubscribe-not-subscribed"] = (() => """{"type":"unsubscribe","id":"n1","topic":"{topic}"}""", "not_found", "n1"),
        // commit without a durable session
        ["commit-pos-garbage"] = (() => """{"type":"commit","id":"c2","topic":"{topic}","pos":"!!"}""", "bad_request", "c2"),
        ["commit-without-session"] = (() => """{"type":"commit","id":"c1","topic":"{topic}","pos":"{pos}"}""", "bad_request", "c1"),
    };

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task Bad_request_gets_its_error_and_the_connection_stays_open(string name)
    {
        var (frame, code, id) = Cases[name];
        var topic = "bad." + name;
        await RunCaseAsync(topic, async (bad, beforePos) =>
        {
            var text = frame().Replace("{topic}", topic).Replace("{pos}", beforePos);
            Assert.True(Encoding.UTF8.GetByteCount(text) < 64 * 1024, "the case must fit the default frame limit");
            await bad.SendTextAsync(text);
            var error = await bad.ExpectAsync("error");
            Assert.Equal(code, (string?)error["code"]);
            Assert.Equal(id, (string?)error["id"]);
            Assert.False(string.IsNullOrEmpty((string?)error["message"]), "an error has a human readable message");
            if (id is null) Assert.False(error.ContainsKey("id"), "no id when the request's id was unreadable");
        }, staysOpen: true);
    }

    [Fact]
    public async Task Binary_frame_gets_bad_request_and_the_connection_stays_open() =>
        await RunCaseAsync("bad.binary", async (bad, _) =>
        {
            await bad.SendBinaryAsync(Encoding.UTF8.GetBytes("""{"type":"ping","id":"b1"}"""));
            var error = await bad.ExpectAsync("error");
            Assert.Equal("bad_request", (string?)error["code"]);
            Assert.Null((string?)error["id"]);
        }, staysOpen: true);

    [Fact]
    public async Task Empty_text_frame_gets_bad_request_and_the_connection_stays_open() =>
        await RunCaseAsync("bad.empty-frame", async (bad, _) =>
        {
            await bad.SendTextAsync("");
            var error = await bad.ExpectAsync("error");
            Assert.Equal("bad_request", (string?)error["code"]);
        }, staysOpen: true);

    [Fact]
    public async Task Oversized_frame_closes_with_1009() =>
        await RunCaseAsync("bad.oversized-one", async (bad, _) =>
        {
            var text = $$"""{"type":"publish","id":"o1","topic":"bad.oversized-one","data":"{{new string('x', 100 * 1024)}}"}""";
            await SendIgnoringCloseAsync(bad, Encoding.UTF8.GetBytes(text), fragments: 1);
            var (status, _) = await bad.Closed.WaitAsync(Timeout);
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, status);
        }, staysOpen: false);

    [Fact]
    public async Task Oversized_fragmented_message_closes_with_1009() =>
        await RunCaseAsync("bad.oversized-fragments", async (bad, _) =>
        {
            // 8 fragments of 10 KiB: each is small, the reassembled message is over 64 KiB.
            var text = $$"""{"type":"publish","id":"o2","topic":"bad.oversized-fragments","data":"{{new string('x', 80 * 1024)}}"}""";
            await SendIgnoringCloseAsync(bad, Encoding.UTF8.GetBytes(text), fragments: 8);
            var (status, _) = await bad.Closed.WaitAsync(Timeout);
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, status);
        }, staysOpen: false);

    [Fact]
    public async Task Subscribing_twice_answers_subscribed_again_and_delivers_once()
    {
        const string topic = "bad.subscribe-twice";
        const string own = "bad.subscribe-twice.own"; // only this test publishes here
        await RunCaseAsync(topic, async (bad, _) =>
        {
            var first = await bad.SubscribeAsync(own, "s1");
            var second = await bad.RequestAsync(new JsonObject { ["type"] = "subscribe", ["id"] = "s2", ["topic"] = own }, "s2");
            Assert.Equal("subscribed", (string?)second["type"]);
            Assert.Equal(own, (string?)second["topic"]);
            Assert.NotNull((string?)first["pos"]);

            await using var pub = await Broker.ConnectAsync();
            var sent = new List<string>();
            for (var i = 0; i < 3; i++) sent.Add(await pub.PublishAsync(own, new { twice = i }, $"tw{i}"));
            var marker = await pub.PublishAsync(own, "marker", "tw-marker");
            sent.Add(marker);
            // Frames up to the marker: each message exactly once, in order (a duplicate would come before the marker).
            var got = new List<string>();
            while (got.Count == 0 || got[^1] != marker)
            {
                var f = await bad.ExpectAsync("message");
                got.Add((string)f["pos"]!);
            }
            Assert.Equal(sent, got);
        }, staysOpen: true, badIsSubscribed: true);
    }

    [Fact]
    public async Task Ping_flood_gets_every_pong_in_order_while_others_are_served()
    {
        const string topic = "bad.flood";
        const int pings = 5_000;
        await using var by = await Bystanders.StartAsync(Broker, topic);
        await using var flooder = await Broker.ConnectAsync();

        var send = Task.Run(async () =>
        {
            for (var i = 0; i < pings; i++) await flooder.SendTextAsync($$"""{"type":"ping","id":"p{{i}}"}""");
        });
        var receive = Task.Run(async () =>
        {
            for (var i = 0; i < pings; i++)
            {
                var pong = await flooder.ExpectAsync("pong");
                Assert.Equal($"p{i}", (string?)pong["id"]);
            }
        });
        // Meanwhile another client publishes and a subscriber receives.
        var others = by.PublishSeveralAsync(20);
        await Task.WhenAll(send, receive, others).WaitAsync(TimeSpan.FromMinutes(2));

        await by.AssertUnaffectedAsync();
    }

    [Fact]
    public async Task Client_that_disconnects_mid_publish_loses_nothing_it_was_acked()
    {
        const string topic = "bad.abort-mid-publish";
        await using var by = await Bystanders.StartAsync(Broker, topic);
        var before = Broker.App.Services.GetRequiredService<Broker.Core.Connections.ConnectionRegistry>().Count;
        await using var aborter = await Broker.ConnectAsync();
        await AbortMidPublishAsync(aborter, topic, by);
        await by.AssertUnaffectedAsync();
        await by.AssertLoggedAsync();
        await AssertConnectionReleasedAsync(Broker, before);
    }

    /// <summary>
    /// Sends many publishes, waits for a few acks, aborts the socket, and records every ack the
    /// client got (read from the socket before the abort) as acknowledged to the bystanders.
    /// </summary>
    internal static async Task AbortMidPublishAsync(WsClient aborter, string topic, Bystanders by, int publishes = 500)
    {
        var payload = new string('m', 200);
        for (var i = 0; i < publishes; i++)
            await aborter.SendTextAsync($$$"""{"type":"publish","id":"a{{{i}}}","topic":"{{{topic}}}","data":{"i":{{{i}}},"s":"{{{payload}}}"}}""");
        var acked = new List<string>();
        while (acked.Count < 10)
        {
            var f = await aborter.ExpectAsync("ack");
            acked.Add((string)f["pos"]!);
        }
        aborter.Socket.Abort();
        // Frames the reader had already taken off the socket are acks the client did get.
        while (true)
        {
            JsonObject f;
            try { f = await aborter.ReceiveAsync(); }
            catch (InvalidOperationException) { break; } // the reader saw the abort
            Assert.Equal("ack", (string?)f["type"]);
            acked.Add((string)f["pos"]!);
        }
        Assert.True(acked.Count < publishes, "the client aborted before all of its acks");
        by.AddAcked(acked);
    }

    /// <summary>Waits until the node's count of open connections is back to <paramref name="expected"/> (polled: the registry has no event).</summary>
    internal static async Task AssertConnectionReleasedAsync(TestBroker broker, int expected)
    {
        var registry = broker.App.Services.GetRequiredService<Broker.Core.Connections.ConnectionRegistry>();
        using var cts = new CancellationTokenSource(Timeout);
        while (registry.Count > expected)
        {
            try { await Task.Delay(50, cts.Token); }
            catch (OperationCanceledException) { break; }
        }
        Assert.Equal(expected, registry.Count);
    }

    /// <summary>
    /// The frame of the issue's bad-input cases: a subscriber and a publisher on <paramref name="topic"/>;
    /// the bad client publishes (acked) before its bad input, another client publishes during and after it.
    /// </summary>
    private async Task RunCaseAsync(string topic, Func<WsClient, string, Task> badInput, bool staysOpen, bool badIsSubscribed = false)
    {
        await using var by = await Bystanders.StartAsync(Broker, topic);
        await using var bad = await Broker.ConnectAsync();
        var beforePos = await by.PublishFromAsync(bad, "bad-before");

        var during = by.PublishSeveralAsync(5);
        await badInput(bad, beforePos).WaitAsync(TimeSpan.FromMinutes(1));
        await during.WaitAsync(Timeout);

        if (staysOpen)
        {
            // The connection still works: a ping gets its pong, and a publish its ack.
            var pong = await bad.RequestAsync(new JsonObject { ["type"] = "ping", ["id"] = "after" }, "after");
            Assert.Equal("pong", (string?)pong["type"]);
            if (!badIsSubscribed) await by.PublishFromAsync(bad, "bad-after");
        }
        await by.AssertUnaffectedAsync();
    }

    /// <summary>Sends one message in <paramref name="fragments"/> frames; the server may close (and stop reading) before the end.</summary>
    private static async Task SendIgnoringCloseAsync(WsClient client, byte[] bytes, int fragments)
    {
        var size = (bytes.Length + fragments - 1) / fragments;
        try
        {
            for (var offset = 0; offset < bytes.Length; offset += size)
            {
                var n = Math.Min(size, bytes.Length - offset);
                using var cts = new CancellationTokenSource(Timeout);
                await client.Socket.SendAsync(bytes.AsMemory(offset, n), WebSocketMessageType.Text, offset + n == bytes.Length, cts.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the server closed first: fine, the close status is what the test checks
        }
    }
}

/// <summary>
/// Clients that must notice nothing of someone else's bad input: an observer subscribed to the
/// topic and a publisher. Every publish acknowledged to anyone on the topic is recorded, and
/// <see cref="AssertUnaffectedAsync"/> checks that the observer got each of them exactly once.
/// </summary>
internal sealed class Bystanders : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly TestBroker _broker;
    private readonly List<string> _acked = [];
    private int _next;

    private Bystanders(TestBroker broker, string topic, WsClient observer, WsClient publisher)
    {
        _broker = broker;
        Topic = topic;
        Observer = observer;
        Publisher = publisher;
    }

    public string Topic { get; }
    public WsClient Observer { get; }
    public WsClient Publisher { get; }

    /// <summary>Connects the bystanders; with <paramref name="observe"/> false the observer does not subscribe (check with <see cref="AssertLoggedAsync"/>).</summary>
    public static async Task<Bystanders> StartAsync(TestBroker broker, string topic, bool observe = true)
    {
        var observer = await broker.ConnectAsync();
        if (observe) await observer.SubscribeAsync(topic, "observe");
        var publisher = await broker.ConnectAsync();
        return new Bystanders(broker, topic, observer, publisher);
    }

    /// <summary>Publishes one message from <paramref name="client"/> and records its ack.</summary>
    public async Task<string> PublishFromAsync(WsClient client, string idPrefix)
    {
        var id = $"{idPrefix}-{Interlocked.Increment(ref _next)}";
        var pos = await client.PublishAsync(Topic, new { from = id }, id);
        AddAcked([pos]);
        return pos;
    }

    /// <summary>The publisher publishes <paramref name="count"/> messages one after another (the only user of the publisher meanwhile).</summary>
    public Task PublishSeveralAsync(int count) => Task.Run(async () =>
    {
        for (var i = 0; i < count; i++) await PublishFromAsync(Publisher, "by");
    });

    public void AddAcked(IEnumerable<string> positions)
    {
        lock (_acked) _acked.AddRange(positions);
    }

    /// <summary>
    /// The server still accepts and serves a new connection, and the observer received every
    /// acknowledged message exactly once (up to a final marker published now).
    /// </summary>
    public async Task AssertUnaffectedAsync()
    {
        await using (var fresh = await _broker.ConnectAsync())
        {
            var pong = await fresh.RequestAsync(new { type = "ping", id = "fresh" }, "fresh");
            Assert.Equal("pong", (string?)pong["type"]);
        }
        var marker = await PublishFromAsync(Publisher, "marker");
        var received = new List<string>();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (received.Count == 0 || received[^1] != marker)
        {
            cts.Token.ThrowIfCancellationRequested();
            var f = await Observer.ExpectAsync("message", Timeout);
            Assert.Equal(Topic, (string?)f["topic"]);
            received.Add((string)f["pos"]!);
        }
        string[] acked;
        lock (_acked) acked = [.. _acked];
        Assert.Equal(received.Count, received.Distinct().Count()); // nothing twice
        var missing = acked.Except(received).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged messages were not delivered: {string.Join(", ", missing.Take(10))}");
    }

    /// <summary>
    /// Every acknowledged message is in the log: a new subscriber replaying the topic from the
    /// earliest message (replay waits for a reader, it is never closed as a slow consumer) gets
    /// each of them, up to a final marker published now.
    /// </summary>
    public async Task AssertLoggedAsync()
    {
        await using (var fresh = await _broker.ConnectAsync())
        {
            var pong = await fresh.RequestAsync(new { type = "ping", id = "fresh" }, "fresh");
            Assert.Equal("pong", (string?)pong["type"]);
        }
        var marker = await PublishFromAsync(Publisher, "replay-marker");
        await using var replay = await _broker.ConnectAsync();
        await replay.SubscribeAsync(Topic, "replay", new { from = "earliest" });
        var received = new List<string>();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (received.Count == 0 || received[^1] != marker)
        {
            cts.Token.ThrowIfCancellationRequested();
            var f = await replay.ExpectAsync("message", Timeout);
            received.Add((string)f["pos"]!);
        }
        string[] acked;
        lock (_acked) acked = [.. _acked];
        Assert.Equal(received.Count, received.Distinct().Count());
        var missing = acked.Except(received).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged messages are not in the log: {string.Join(", ", missing.Take(10))}");
    }

    public async ValueTask DisposeAsync()
    {
        await Observer.DisposeAsync();
        await Publisher.DisposeAsync();
    }
}
