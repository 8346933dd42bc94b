using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;
using Broker.Protocol;
using Xunit.Abstractions;

namespace Broker.IntegrationTests;

/// <summary>
/// <c>kill -9</c> of the node that holds a topic's writer while clients publish to it, on a topic
/// of one partition and of four, in a cluster of three broker processes. Every answer any client
/// got is checked against the log read back from its start: every message of the clients that
/// resend is in it once, at the position its acks named; what a client that never resends was told
/// "nothing was written" is not in it; subscribers that resume with <c>since</c> get every record
/// once, in order per key.
/// </summary>
public sealed class WriterKilledTests(ITestOutputHelper output)
{
    private const int PerPublisher = 1200;
    private const int Keys = 8;
    private const string NotWritten = "nothing was written";

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Killing_the_writers_node_mid_stream_loses_nothing_writes_nothing_twice_and_every_answer_is_true(int partitions)
    {
        var topic = $"killed.p{partitions}";
        await using var cluster = await ProcessCluster.StartAsync(3, [$"broker.kafka.partitions = {partitions}"]);
        var passed = false;
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(4));
            var since = DateTime.UtcNow;
            await using (var warm = await WsClient.ConnectAsync(cluster.Nodes[0].WsUri))
                await warm.PublishAsync(topic, "warm-up", "warm-up");
            var victim = await cluster.WriterOfAsync(topic, since.AddSeconds(-1), TimeSpan.FromSeconds(30));
            var other = cluster.Live.First(n => n != victim);
            Uri Node(int n) => cluster.Nodes[n % cluster.Nodes.Count].WsUri;

            // Subscribers on every node, from the head; they resume with since on another node when theirs dies.
            var subscribers = new List<ResumingSubscriber>();
            for (var n = 0; n < 3; n++) subscribers.Add(await ResumingSubscriber.StartAsync(topic, n, Node, cluster, deadline.Token));

            string? KeyOf(int i) => $"k{i % Keys}";
            var publishers = new[]
            {
                new RetryingPublisher("a", topic, Node, window: 20, keyOf: KeyOf), // on a node that survives
                new RetryingPublisher("b", topic, Node, window: 20, keyOf: KeyOf), // on the node that dies
            };
            var running = new[] { publishers[0].RunAsync(PerPublisher, other, deadline.Token), publishers[1].RunAsync(PerPublisher, victim, deadline.Token) };
            // A client that never resends, one publish every 50 ms on a surviving node, through the fail-over.
            using var stopOneShot = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            var oneShot = OneShotAsync(Node(other), topic, stopOneShot.Token);

            await Wait.UntilAsync(() => publishers.Sum(p => p.AckedCount) >= PerPublisher * 2 / 3, "publishing is under way", TimeSpan.FromMinutes(2));
            cluster.Kill(victim);
            var killedAt = DateTime.UtcNow;
            output.WriteLine($"killed node{victim + 1}, the writer of {topic} ({partitions} partition(s))");

            await Task.WhenAll(running).WaitAsync(deadline.Token);
            await stopOneShot.CancelAsync();
            var onceAnswers = await oneShot;
            output.WriteLine($"publishers: {string.Join(", ", publishers.Select(p => $"{p.Name}: {p.Connections} connections, {p.Answers.Count(a => a.IsUnavailable)} unavailable, {p.Resent} resent"))}; " +
                $"first ack of a new message {(publishers[0].FirstAckOfMessageSentAfter(killedAt) - killedAt)?.TotalSeconds:0.0} s after the kill");

            // ---- the log ---------------------------------------------------------------------
            var log = LogReadBack.All(cluster.Log.BootstrapServers, topic);
            var clientRecords = log.Where(r => r.Client is not null).ToList();
            var twice = clientRecords.GroupBy(r => (r.Client, r.Id)).Where(g => g.Count() > 1).Select(g => $"{g.Key.Client}/{g.Key.Id}").ToList();
            Assert.True(twice.Count == 0, "written more than once: " + string.Join(", ", twice.Take(20)));
            var byId = clientRecords.ToDictionary(r => (r.Client!, r.Id!));

            foreach (var p in publishers)
            {
                Assert.Equal(0, p.Unanswered);
                for (var i = 0; i < PerPublisher; i++)
                {
                    var record = byId[(p.ClientId, $"{p.Name}-{i}")];
                    Assert.Equal(p.DataOf(i), record.Text);
                    foreach (var ack in p.Answers.Where(a => a.Index == i && a.IsAck)) AssertNamesRecord(ack.Pos!, record);
                }
            }

            int acked = 0, definite = 0, unknownWritten = 0, unknownNot = 0;
            foreach (var (id, answer) in onceAnswers)
            {
                byId.TryGetValue((OneShotClient, id), out var record);
                if ((string?)answer["type"] == "ack")
                {
                    acked++;
                    Assert.NotNull(record);
                    AssertNamesRecord((string)answer["pos"]!, record);
                }
                else if (((string?)answer["message"])!.Contains(NotWritten, StringComparison.Ordinal))
                {
                    definite++;
                    Assert.True(record is null, $"{id} was answered '{answer["message"]}' but is in the log");
                }
                else if (record is null) unknownNot++;
                else unknownWritten++;
            }
            output.WriteLine($"client that never resends: {onceAnswers.Count} publishes, {acked} acked, {definite} 'nothing was written' (none in the log), " +
                $"outcome unknown: {unknownWritten} in the log, {unknownNot} not");

            // ---- the subscribers: every record after the warm-up once, each key in the log's order
            var expected = log.Where(r => r.Text != "\"warm-up\"").Select(r => new Seen(r.Key, r.Text)).ToList();
            await Task.WhenAll(subscribers.Select(s => s.WaitForAsync(expected.Count, TimeSpan.FromMinutes(2))));
            foreach (var s in subscribers)
            {
                var seen = await s.StopAsync();
                Assert.Equal(expected.Count, seen.Count);
                Assert.Equal(expected.Select(m => m.Data).Order(StringComparer.Ordinal), seen.Select(m => m.Data).Order(StringComparer.Ordinal)); // each once
                foreach (var key in expected.Select(m => m.Key).Distinct())
                    Assert.Equal(expected.Where(m => m.Key == key).Select(m => m.Data), seen.Where(m => m.Key == key).Select(m => m.Data)); // in order per key
            }
            output.WriteLine($"subscribers: {string.Join(", ", subscribers.Select(s => $"{s.Resumes} resume(s)"))}");
            passed = true;
        }
        finally
        {
            if (!passed) cluster.Dump(output, 60);
        }
    }

    private const string OneShotClient = "one-shot";

    /// <summary>The ack's position has the record's own offset + 1 in the record's partition.</summary>
    private static void AssertNamesRecord(string pos, LoggedRecord record)
    {
        Assert.True(Position.TryParse(pos, out var p), pos);
        Assert.Equal(record.Offset + 1, p.NextOffset(record.Partition));
    }

    /// <summary>Publishes one message every 50 ms (ids o-0, o-1, …) and never resends; returns every answer by id.</summary>
    private static async Task<Dictionary<string, JsonObject>> OneShotAsync(Uri node, string topic, CancellationToken stop)
    {
        var answers = new Dictionary<string, JsonObject>();
        var sent = 0;
        WsClient? client = null;
        try
        {
            client = await WsClient.ConnectAsync(new Uri(node + "?client=" + OneShotClient));
            while (!stop.IsCancellationRequested)
            {
                var id = $"o-{sent}";
                await client.SendAsync(new { type = "publish", id, topic, data = new { o = sent }, key = $"k{sent % Keys}" });
                sent++;
                try { await Task.Delay(50, stop); } catch (OperationCanceledException) { }
                while (true)
                {
                    JsonObject f;
                    try { f = await client.ReceiveAsync(TimeSpan.FromMilliseconds(1)); }
                    catch (TimeoutException) { break; }
                    answers[(string)f["id"]!] = f;
                }
            }
            // Every publish is answered (within request-timeout).
            while (answers.Count < sent) { var f = await client.ReceiveAsync(TimeSpan.FromSeconds(30)); answers[(string)f["id"]!] = f; }
        }
        finally
        {
            if (client is not null) await client.DisposeAsync();
        }
        return answers;
    }

    /// <summary>A message as a subscriber received it (or as the log holds it): its key and its data.</summary>
    private sealed record Seen(string? Key, string Data);

    /// <summary>Reads from the head; when its connection drops it resumes on the next live node with since = the last pos received.</summary>
    private sealed class ResumingSubscriber
    {
        private readonly List<Seen> _seen = [];
        private readonly Lock _gate = new();
        private readonly CancellationTokenSource _stop = new();
        private Task _loop = Task.CompletedTask;
        private string _last = "";

        public int Resumes { get; private set; }

        public static async Task<ResumingSubscriber> StartAsync(string topic, int node, Func<int, Uri> nodes, ProcessCluster cluster, CancellationToken ct)
        {
            var s = new ResumingSubscriber();
            var client = await WsClient.ConnectAsync(nodes(node));
            s._last = (string)(await client.SubscribeAsync(topic, "s"))["pos"]!;
            s._loop = Task.Run(() => s.RunAsync(client, topic, node, nodes, cluster, ct));
            return s;
        }

        public Task WaitForAsync(int count, TimeSpan timeout) => Wait.UntilAsync(() =>
        {
            if (_loop.IsFaulted) throw _loop.Exception!;
            lock (_gate) return _seen.Count >= count;
        }, $"a subscriber received {count} messages", timeout);

        /// <summary>Stops reading (after anything already queued behind the last message) and returns what it received.</summary>
        public async Task<List<Seen>> StopAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            lock (_gate) return [.. _seen];
        }

        private async Task RunAsync(WsClient client, string topic, int node, Func<int, Uri> nodes, ProcessCluster cluster, CancellationToken ct)
        {
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    JsonObject f;
                    try
                    {
                        f = await client.ReceiveAsync(TimeSpan.FromMilliseconds(500));
                    }
                    catch (TimeoutException)
                    {
                        if (!_stop.IsCancellationRequested) continue;
                        // Drain: a duplicate would already be queued behind the last message.
                        await client.SendAsync(new { type = "ping", id = "end" });
                        var after = new List<JsonObject>();
                        await client.ReplyToAsync("end", after, TimeSpan.FromSeconds(30));
                        foreach (var m in after) Add(m);
                        return;
                    }
                    catch (InvalidOperationException)
                    {
                        await client.DisposeAsync();
                        (client, node) = await ResumeAsync(topic, node, nodes, cluster, ct);
                        continue;
                    }
                    if ((string?)f["type"] == "message") Add(f);
                }
            }
            finally
            {
                await client.DisposeAsync();
            }
        }

        private void Add(JsonObject m)
        {
            _last = (string)m["pos"]!;
            lock (_gate) _seen.Add(new Seen((string?)m["key"], m["data"]!.ToJsonString()));
        }

        private async Task<(WsClient, int)> ResumeAsync(string topic, int from, Func<int, Uri> nodes, ProcessCluster cluster, CancellationToken ct)
        {
            Resumes++;
            var at = from;
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                at = (at + 1) % cluster.Nodes.Count;
                if (cluster.Nodes[at].HasExited) continue;
                WsClient? c = null;
                try
                {
                    c = await WsClient.ConnectAsync(nodes(at));
                    var reply = await c.SubscribeAsync(topic, "resume", new { since = _last });
                    Assert.True((bool?)reply["recovered"] == true, "resume not recovered: " + reply.ToJsonString());
                    return (c, at);
                }
                catch (Exception e) when (e is System.Net.WebSockets.WebSocketException or TimeoutException or InvalidOperationException)
                {
                    if (c is not null) await c.DisposeAsync();
                    await Task.Delay(200, ct);
                }
            }
        }
    }
}
