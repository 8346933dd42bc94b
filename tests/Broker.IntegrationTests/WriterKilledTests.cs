using System.Text;
using System.Text.Json.Nodes;
using Broker.Core.Log;
using Broker.IntegrationTests.Infrastructure;
using Broker.Protocol;
using Xunit.Abstractions;

namespace Broker.IntegrationTests;

/// <summary>
/// <c>kill -9</c> of the node that holds a topic's writer while clients publish to it, in a cluster
/// of three broker processes: on a topic of its own Kafka topic (one partition and four) and on
/// topics of a multiplexed namespace that share one Kafka topic. Every answer any client got is
/// checked against the log read back from its start: every message of the clients that resend is
/// in it once, at the position its acks named; what a client that never resends was told "nothing
/// was written" is not in it; subscribers that resume with <c>since</c> get every record of the
/// topics they subscribed once, in order (per key on several partitions), and nothing of another
/// topic.
/// </summary>
public sealed class WriterKilledTests(ITestOutputHelper output)
{
    private const int Keys = 8;
    private const string NotWritten = "nothing was written";
    private const string OneShotClient = "one-shot";
    private const string WarmUp = "\"warm-up\"";

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public Task Killing_the_writers_node_mid_stream_loses_nothing_writes_nothing_twice_and_every_answer_is_true(int partitions) =>
        RunAsync(Scenario.OwnKafkaTopic($"killed.p{partitions}", partitions));

    [Fact]
    public Task Killing_the_node_of_a_multiplexed_topics_writer_mid_stream_loses_nothing_writes_nothing_twice_every_answer_is_true_and_topics_stay_apart() =>
        RunAsync(Scenario.Multiplexed());

    /// <summary>
    /// What a run varies: the topics (the first is the one whose writer's node is killed), the
    /// Kafka topic their records are in, how many messages each publisher sends and how fast
    /// (<see cref="RetryingPublisher.RunAsync"/>'s paceEvery: paced, every publisher is still
    /// mid-stream when the slowest is a third through, though one next to its topic's writer is
    /// several times as fast as one on another node when unpaced).
    /// </summary>
    private sealed record Scenario(string[] Topics, string KafkaTopic, bool Multiplex, int Partitions, int PerPublisher, TimeSpan Pace, IReadOnlyList<string> Config)
    {
        public string Killed => Topics[0];

        /// <summary>One topic in a Kafka topic of its own.</summary>
        public static Scenario OwnKafkaTopic(string topic, int partitions) =>
            new([topic], topic, false, partitions, 1200, TimeSpan.FromMilliseconds(5), [$"broker.kafka.partitions = {partitions}"]);

        /// <summary>
        /// Six topics of a namespace sharing a four-partition Kafka topic; the killed topic shares
        /// its partition with at least one other, so its new writer's tail read must tell them apart.
        /// </summary>
        public static Scenario Multiplexed()
        {
            const int partitions = 4;
            var names = Enumerable.Range(0, 100).Select(i => $"mx.t{i}").ToList();
            var killed = names[0];
            var neighbour = names.Skip(1).First(n => PartitionOf(n, partitions) == PartitionOf(killed, partitions));
            string[] topics = [killed, neighbour, .. names.Skip(1).Where(n => n != neighbour).Take(4)];
            return new(topics, "broker.mx", true, partitions, 300, TimeSpan.FromMilliseconds(10),
                [$$"""broker.namespaces = [ { pattern = "mx.>", kafka-topic = "broker.mx", multiplex = true, partitions = {{partitions}} } ]"""]);
        }

        public static int PartitionOf(string topic, int partitions) => KafkaPartitioner.Partition(Encoding.UTF8.GetBytes(topic), partitions);

        /// <summary>The broker topic of a record read back (multiplexed: its Kafka key).</summary>
        public string TopicOf(LoggedRecord r) => Multiplex ? r.Key! : Killed;

        /// <summary>The publish's own key (multiplexed: the <c>broker-key</c> header).</summary>
        public string? KeyOf(LoggedRecord r) => Multiplex ? r.Headers.GetValueOrDefault(KafkaLog.KeyHeader) : r.Key;

        /// <summary>
        /// What a subscriber sees in order: a multiplexed topic is one partition, so all of it; a
        /// topic of several partitions, each key.
        /// </summary>
        public string? OrderGroupOf(Seen m) => Multiplex || Partitions == 1 ? "" : m.Key;

        /// <summary>The ack's position has the record's own offset + 1 in the record's partition (multiplexed: a one-partition position).</summary>
        public void AssertNamesRecord(string pos, LoggedRecord record)
        {
            Assert.True(Position.TryParse(pos, out var p), pos);
            if (Multiplex)
            {
                Assert.Equal(1, p.PartitionCount);
                Assert.Equal(record.Offset + 1, p.NextOffset(0));
            }
            else
            {
                Assert.Equal(record.Offset + 1, p.NextOffset(record.Partition));
            }
        }
    }

    private async Task RunAsync(Scenario scenario)
    {
        var topic = scenario.Killed;
        var perPublisher = scenario.PerPublisher;
        await using var cluster = await ProcessCluster.StartAsync(3, scenario.Config);
        var passed = false;
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(4));
            var since = DateTime.UtcNow;
            await using (var warm = await WsClient.ConnectAsync(cluster.Nodes[0].WsUri))
                foreach (var t in scenario.Topics) await warm.PublishAsync(t, "warm-up", "warm-up");
            var victim = await cluster.WriterOfAsync(topic, since.AddSeconds(-1), TimeSpan.FromSeconds(30));
            var other = cluster.Live.First(n => n != victim);
            Uri Node(int n) => cluster.Nodes[n % cluster.Nodes.Count].WsUri;

            // Subscribers on every node, from the head; they resume with since on another node when
            // theirs dies. With several topics, each leaves one out (never the killed one).
            var subscribed = Enumerable.Range(0, 3).Select(n => scenario.Topics.Length == 1
                ? scenario.Topics
                : scenario.Topics.Where(t => t != scenario.Topics[1 + n]).ToArray()).ToList();
            var subscribers = new List<ResumingSubscriber>();
            for (var n = 0; n < 3; n++) subscribers.Add(await ResumingSubscriber.StartAsync(subscribed[n], n, Node, cluster, deadline.Token));

            string? KeyOf(int i) => $"k{i % Keys}";
            // The killed topic: one publisher on a node that survives, one on the node that dies;
            // every other topic: one publisher, on nodes in turn.
            var publishers = new List<(RetryingPublisher Publisher, string Topic, int FirstNode)>
            {
                (new RetryingPublisher("a", topic, Node, window: 20, keyOf: KeyOf), topic, other),
                (new RetryingPublisher("b", topic, Node, window: 20, keyOf: KeyOf), topic, victim),
            };
            foreach (var (t, i) in scenario.Topics.Skip(1).Select((t, i) => (t, i)))
                publishers.Add((new RetryingPublisher($"t{i + 1}", t, Node, window: 20, keyOf: KeyOf), t, i % 3));
            var running = publishers.Select(p => p.Publisher.RunAsync(perPublisher, p.FirstNode, deadline.Token, scenario.Pace)).ToArray();
            // A client that never resends, one publish every 50 ms on a surviving node, through the fail-over.
            using var stopOneShot = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            var oneShot = OneShotAsync(Node(other), topic, stopOneShot.Token);

            // Killed while every publisher is mid-stream: when the slowest is a third through.
            await Wait.UntilAsync(() => publishers.Min(p => p.Publisher.AckedCount) >= perPublisher / 3, "publishing is under way", TimeSpan.FromMinutes(2));
            cluster.Kill(victim);
            var killedAt = DateTime.UtcNow;
            var writers = new List<int>();
            foreach (var t in scenario.Topics) writers.Add(await cluster.WriterOfAsync(t, since.AddSeconds(-1), TimeSpan.FromSeconds(1)));
            output.WriteLine($"killed node{victim + 1}, the writer of {topic} ({(scenario.Multiplex
                ? $"{scenario.Topics.Length} topics multiplexed in {scenario.KafkaTopic}; partitions {string.Join(" ", scenario.Topics.Select(t => Scenario.PartitionOf(t, scenario.Partitions)))}, " +
                  $"writers on node{string.Join(" node", writers.Select(w => w + 1))}"
                : $"{scenario.Partitions} partition(s)")})");

            await Task.WhenAll(running).WaitAsync(deadline.Token);
            await stopOneShot.CancelAsync();
            var onceAnswers = await oneShot;
            output.WriteLine($"publishers: {string.Join(", ", publishers.Select(p => p.Publisher).Select(p => $"{p.Name}: {p.Connections} connections, {p.Answers.Count(a => a.IsUnavailable)} unavailable, {p.Resent} resent"))}; " +
                $"first ack of a new message {(publishers[0].Publisher.FirstAckOfMessageSentAfter(killedAt) - killedAt)?.TotalSeconds:0.0} s after the kill");

            // ---- the log ---------------------------------------------------------------------
            var log = LogReadBack.All(cluster.Log.BootstrapServers, scenario.KafkaTopic);
            if (scenario.Multiplex)
            {
                // Every record is keyed with one of the topics, in that topic's partition.
                Assert.All(log, r => Assert.Contains(r.Key, scenario.Topics));
                Assert.All(log, r => Assert.Equal(Scenario.PartitionOf(r.Key!, scenario.Partitions), r.Partition));
            }
            var clientRecords = log.Where(r => r.Client is not null).ToList();
            var twice = clientRecords.GroupBy(r => (Topic: scenario.TopicOf(r), r.Client, r.Id)).Where(g => g.Count() > 1)
                .Select(g => $"{g.Key.Topic}/{g.Key.Client}/{g.Key.Id}").ToList();
            Assert.True(twice.Count == 0, "written more than once: " + string.Join(", ", twice.Take(20)));
            var byId = clientRecords.ToDictionary(r => (scenario.TopicOf(r), r.Client!, r.Id!));

            foreach (var (p, t, first) in publishers)
            {
                Assert.Equal(0, p.Unanswered);
                if (first == victim) Assert.True(p.Connections >= 2, $"publisher {p.Name} was done before its node was killed");
                for (var i = 0; i < perPublisher; i++)
                {
                    var record = byId[(t, p.ClientId, $"{p.Name}-{i}")];
                    Assert.Equal(p.DataOf(i), record.Text);
                    Assert.Equal(KeyOf(i), scenario.KeyOf(record));
                    foreach (var ack in p.Answers.Where(a => a.Index == i && a.IsAck)) scenario.AssertNamesRecord(ack.Pos!, record);
                }
            }

            int acked = 0, definite = 0, unknownWritten = 0, unknownNot = 0;
            foreach (var (id, answer) in onceAnswers)
            {
                byId.TryGetValue((topic, OneShotClient, id), out var record);
                if ((string?)answer["type"] == "ack")
                {
                    acked++;
                    Assert.NotNull(record);
                    scenario.AssertNamesRecord((string)answer["pos"]!, record);
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

            // ---- the subscribers: every record of their topics after the warm-up once, in order; nothing of another topic
            var expected = log.Where(r => r.Text != WarmUp).Select(r => new Seen(scenario.TopicOf(r), scenario.KeyOf(r), r.Text)).ToList();
            await Task.WhenAll(subscribers.Select((s, n) => s.WaitForAsync(expected.Count(m => subscribed[n].Contains(m.Topic)), TimeSpan.FromMinutes(2))));
            for (var n = 0; n < 3; n++)
            {
                // From the head on a node that reads the shared Kafka topic already (it always does with the
                // offset index) is from its feed's position, which may be just before the warm-up records.
                var seen = (await subscribers[n].StopAsync()).Where(m => m.Data != WarmUp).ToList();
                var stray = seen.Where(m => !subscribed[n].Contains(m.Topic)).ToList();
                Assert.True(stray.Count == 0, $"subscriber {n} got {stray.Count} messages of topics it did not subscribe, e.g. {stray.FirstOrDefault()}");
                foreach (var t in subscribed[n])
                {
                    var want = expected.Where(m => m.Topic == t).ToList();
                    var got = seen.Where(m => m.Topic == t).ToList();
                    Assert.Equal(want.Count, got.Count);
                    Assert.Equal(want.Select(m => m.Data).Order(StringComparer.Ordinal), got.Select(m => m.Data).Order(StringComparer.Ordinal)); // each once, only the topic's own
                    foreach (var group in want.Select(scenario.OrderGroupOf).Distinct())
                        Assert.Equal(want.Where(m => scenario.OrderGroupOf(m) == group), got.Where(m => scenario.OrderGroupOf(m) == group)); // in order (per key on several partitions)
                }
            }
            output.WriteLine($"subscribers: {string.Join(", ", subscribers.Select(s => $"{s.Resumes} resume(s)"))}");
            passed = true;
        }
        finally
        {
            if (!passed) cluster.Dump(output, 60);
        }
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

    /// <summary>A message as a subscriber received it (or as the log holds it): its topic, key and data.</summary>
    private sealed record Seen(string Topic, string? Key, string Data);

    /// <summary>
    /// Reads its topics (on one connection) from the head; when the connection drops it resumes each
    /// on the next live node with since = the last pos received of that topic.
    /// </summary>
    private sealed class ResumingSubscriber
    {
        private readonly List<Seen> _seen = [];
        private readonly Lock _gate = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Dictionary<string, string> _last = [];
        private readonly string[] _topics;
        private Task _loop = Task.CompletedTask;

        private ResumingSubscriber(string[] topics) => _topics = topics;

        public int Resumes { get; private set; }

        public static async Task<ResumingSubscriber> StartAsync(string[] topics, int node, Func<int, Uri> nodes, ProcessCluster cluster, CancellationToken ct)
        {
            var s = new ResumingSubscriber(topics);
            var client = await WsClient.ConnectAsync(nodes(node));
            foreach (var topic in topics) s._last[topic] = (string)(await s.SubscribeAsync(client, topic, null))["pos"]!;
            s._loop = Task.Run(() => s.RunAsync(client, node, nodes, cluster, ct));
            return s;
        }

        public Task WaitForAsync(int count, TimeSpan timeout) => Wait.UntilAsync(() =>
        {
            if (_loop.IsFaulted) throw _loop.Exception!;
            lock (_gate) return _seen.Count(m => m.Data != WarmUp) >= count;
        }, $"a subscriber received {count} messages", timeout);

        /// <summary>Stops reading (after anything already queued behind the last message) and returns what it received.</summary>
        public async Task<List<Seen>> StopAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            lock (_gate) return [.. _seen];
        }

        /// <summary>Subscribes; messages of the topics already subscribed that arrive before the reply are kept.</summary>
        private async Task<JsonObject> SubscribeAsync(WsClient client, string topic, string? since)
        {
            var id = "sub-" + topic;
            var request = new JsonObject { ["type"] = "subscribe", ["id"] = id, ["topic"] = topic };
            if (since is not null) request["since"] = since;
            await client.SendTextAsync(request.ToJsonString());
            var before = new List<JsonObject>();
            var reply = await client.ReplyToAsync(id, before);
            foreach (var m in before) Add(m);
            if ((string?)reply["type"] != "subscribed") throw new InvalidOperationException("subscribe failed: " + reply.ToJsonString());
            return reply;
        }

        private async Task RunAsync(WsClient client, int node, Func<int, Uri> nodes, ProcessCluster cluster, CancellationToken ct)
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
                        (client, node) = await ResumeAsync(node, nodes, cluster, ct);
                        continue;
                    }
                    Add(f);
                }
            }
            finally
            {
                await client.DisposeAsync();
            }
        }

        private void Add(JsonObject m)
        {
            if ((string?)m["type"] != "message") return;
            var topic = (string)m["topic"]!;
            lock (_gate)
            {
                _last[topic] = (string)m["pos"]!;
                _seen.Add(new Seen(topic, (string?)m["key"], m["data"]!.ToJsonString()));
            }
        }

        private async Task<(WsClient, int)> ResumeAsync(int from, Func<int, Uri> nodes, ProcessCluster cluster, CancellationToken ct)
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
                    foreach (var topic in _topics)
                    {
                        string since;
                        lock (_gate) since = _last[topic];
                        var reply = await SubscribeAsync(c, topic, since);
                        Assert.True((bool?)reply["recovered"] == true, "resume not recovered: " + reply.ToJsonString());
                    }
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
