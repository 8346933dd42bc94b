using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.DevKafka;
using Broker.IntegrationTests.Infrastructure;
using Broker.Protocol;
using Confluent.Kafka;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Broker.IntegrationTests;

/// <summary>
/// Three broker processes form one cluster over one Kafka log; the node that hosts the topic's
/// actor (and a publisher and a third of the subscribers) is killed with SIGKILL mid-stream.
/// Clients do what the protocol tells them: publishers reconnect with the same <c>?client=</c>
/// and resend every unacknowledged publish with the same id; subscribers reconnect and resume with
/// <c>since</c> = the last position they received. Written against the raw protocol on purpose: it
/// shows that those rules alone suffice; Client/ClientClusterFailoverTests kills a node under
/// Broker.Client users.
/// </summary>
public sealed class NodeFailureTests(ITestOutputHelper output)
{
    private const string Topic = "failover.t";
    private const int Nodes = 3;
    private const int PerPublisher = 2500;
    private const int Total = 2 * PerPublisher;
    private const int SubscriberCount = 100;
    private const int Window = 50;
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RunDeadline = TimeSpan.FromSeconds(150);

    private readonly List<BrokerProcess> _nodes = [];
    private volatile int _killed = -1;

    [Fact]
    public async Task Killing_a_node_loses_no_acknowledged_message_and_resumed_subscribers_get_each_once_in_order()
    {
        var clock = Stopwatch.StartNew();
        using var kafka = MockKafkaCluster.Start("127.0.0.1", 0);
        using var admin = new AdminEndpoint(kafka, "127.0.0.1", 0);
        var ports = DistinctFreePorts(2 * Nodes);
        var seeds = ports.Take(Nodes).Select(BrokerProcess.SeedAddress).ToArray();
        string[] config =
        [
            "broker.cluster.split-brain-resolver.stable-after = 3s",
            "broker.shutdown-deadline = 5s",
            // This test is about node loss: a client starved of CPU by four processes on a small
            // machine should not also be closed as a slow consumer (it would recover the same way).
            "broker.websocket.outbound-buffer-frames = 16384",
            "akka.loglevel = INFO",
        ];
        var failed = true;
        try
        {
            for (var n = 0; n < Nodes; n++)
                _nodes.Add(BrokerProcess.Start($"node{n + 1}", ports[Nodes + n], ports[n], seeds, kafka.BootstrapServers, admin.Address, config));
            await Task.WhenAll(_nodes.Select(n => n.WaitReadyAsync(TimeSpan.FromSeconds(120))));
            output.WriteLine($"{clock.Elapsed}: cluster of {Nodes} processes ready");

            // The first publish places the topic's actor; the node that hosts it is the one killed.
            await using (var warm = await WsClient.ConnectAsync(_nodes[0].WsUri))
                await warm.PublishAsync(Topic, "warm-up", "warm");
            var victim = await HostOfTopicActorAsync(TimeSpan.FromSeconds(30));
            output.WriteLine($"{clock.Elapsed}: topic actor on node{victim + 1}; it will be killed");

            // 100 subscribers round-robin over the nodes; a publisher on the victim and one on another node.
            var subscribers = new Subscriber[SubscriberCount];
            using (var gate = new SemaphoreSlim(10))
            {
                await Task.WhenAll(Enumerable.Range(0, SubscriberCount).Select(async i =>
                {
                    await gate.WaitAsync();
                    try
                    {
                        var client = await WsClient.ConnectAsync(_nodes[i % Nodes].WsUri);
                        var reply = await client.SubscribeAsync(Topic, "s");
                        subscribers[i] = new Subscriber(i, client, i % Nodes, (string)reply["pos"]!);
                    }
                    finally
                    {
                        gate.Release();
                    }
                }));
            }
            output.WriteLine($"{clock.Elapsed}: {SubscriberCount} subscribers");

            var deadline = DateTime.UtcNow + RunDeadline;
            var reading = subscribers.Select(s => Task.Run(() => s.RunAsync(this, deadline))).ToArray();
            var killAt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var ackedSoFar = 0;
            void OnAck()
            {
                if (Interlocked.Increment(ref ackedSoFar) >= Total / 3) killAt.TrySetResult();
            }
            var publishers = new[]
            {
                new Publisher("a", $"failover-pub-a-{Guid.NewGuid():N}", victim),
                new Publisher("b", $"failover-pub-b-{Guid.NewGuid():N}", (victim + 1) % Nodes),
            };
            var publishing = publishers.Select(p => Task.Run(() => p.RunAsync(this, OnAck, deadline))).ToArray();

            await killAt.Task.WaitAsync(TimeSpan.FromSeconds(90));
            _killed = victim;
            _nodes[victim].Kill();
            output.WriteLine($"{clock.Elapsed}: killed node{victim + 1} (pid {_nodes[victim].Pid}) after {Volatile.Read(ref ackedSoFar)} acks");

            await Task.WhenAll(publishing).WaitAsync(RunDeadline);
            output.WriteLine($"{clock.Elapsed}: all {Total} publishes acknowledged; " +
                string.Join(", ", publishers.Select(p => $"publisher {p.Name}: {p.Connections} connections, {p.Unavailable} unavailable, {p.Dropped} dropped, {p.Resent} resent")));
            await Task.WhenAll(reading).WaitAsync(RunDeadline);
            output.WriteLine($"{clock.Elapsed}: subscribers done; {subscribers.Count(s => s.Resumes > 0)} resumed on another connection " +
                $"({subscribers.Sum(s => s.Resumes)} resumes)");

            // The scenario happened: the publisher on the killed node lost its connection and resent.
            Assert.True(publishers[0].Connections > 1 && publishers[0].Resent > 0, "the publisher on the killed node never reconnected");
            Assert.True(subscribers.Any(s => s.Resumes > 0), "no subscriber resumed");

            // ---- the log: every (p, i) exactly once, at the position its ack named ----------------
            var log = ReadLog(kafka.BootstrapServers, Topic);
            var written = log.Where(r => r.Key is not null).ToList();
            var counts = written.GroupBy(r => r.Key!).ToDictionary(g => g.Key, g => g.Count());
            var twice = counts.Where(kv => kv.Value > 1).Select(kv => kv.Key).ToList();
            Assert.True(twice.Count == 0, $"written more than once: {string.Join(", ", twice.Take(20))}");
            Assert.Equal(Total, written.Count);
            var posOfKey = written.ToDictionary(r => r.Key!, r => r.Pos);
            foreach (var p in publishers)
            {
                Assert.Equal(PerPublisher, p.Acked.Count);
                foreach (var (i, pos) in p.Acked) Assert.Equal(posOfKey[$"{p.Name}:{i}"], pos);
            }

            // ---- every subscriber: the whole log after its subscribe point, in order, once -------
            var expected = written.Select(r => (r.Pos, r.Key!)).ToList();
            var index = expected.Select((e, i) => (e.Pos, i)).ToDictionary(x => x.Pos, x => x.i);
            foreach (var s in subscribers)
            {
                var last = -1;
                foreach (var (pos, key) in s.Seen)
                {
                    Assert.True(index.TryGetValue(pos, out var at), $"subscriber {s.Index} got a position that is not in the log: {pos}");
                    Assert.True(at > last, $"subscriber {s.Index}: {key} at {pos} after log index {last} (duplicate or out of order; resumes: {s.Resumes})");
                    Assert.Equal(expected[at].Item2, key);
                    last = at;
                }
                Assert.Equal(expected, s.Seen);
            }
            failed = false;
            output.WriteLine($"{clock.Elapsed}: verified");
        }
        finally
        {
            foreach (var node in _nodes)
            {
                if (failed)
                {
                    var lines = node.Output.Split('\n');
                    output.WriteLine($"---- {node.Name} (log {node.LogPath}), last 80 of {lines.Length} lines ----");
                    foreach (var line in lines.TakeLast(80)) output.WriteLine(line.TrimEnd('\r'));
                }
                await node.DisposeAsync();
                if (!failed) File.Delete(node.LogPath);
            }
        }
    }

    private static int[] DistinctFreePorts(int count)
    {
        var ports = new HashSet<int>();
        while (ports.Count < count) ports.Add(TestCluster.FreePort());
        return [.. ports];
    }

    /// <summary>The node whose log says it started the topic's actor (bounded wait).</summary>
    private async Task<int> HostOfTopicActorAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            for (var n = 0; n < _nodes.Count; n++)
                if (_nodes[n].Output.Contains($"Topic {Topic} ready on")) return n;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no node logged that it started the actor of {Topic}");
            await Task.Delay(100);
        }
    }

    /// <summary>The next node after <paramref name="current"/> that is neither killed nor exited.</summary>
    private int NextLive(int current)
    {
        for (var k = 1; k <= Nodes; k++)
        {
            var n = (current + k) % Nodes;
            if (n != _killed && !_nodes[n].HasExited) return n;
        }
        throw new InvalidOperationException("no live node");
    }

    private bool IsLive(int node) => node != _killed && !_nodes[node].HasExited;

    /// <summary>Positions and (p, i) keys of the topic's records, in log order (warm-up records have no key).</summary>
    private static List<(string Pos, string? Key)> ReadLog(string bootstrap, string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "failover-" + Guid.NewGuid() }).Build();
        var tp = new TopicPartition(topic, 0);
        var wm = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
        consumer.Assign(new TopicPartitionOffset(tp, wm.Low));
        var records = new List<(string, string?)>();
        for (var next = wm.Low.Value; next < wm.High.Value;)
        {
            var r = consumer.Consume(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException("the log was not read back");
            if (r.IsPartitionEOF) continue;
            var data = JsonNode.Parse(Encoding.UTF8.GetString(r.Message.Value));
            var key = data is JsonObject o && o["p"] is { } p ? $"{(string)p!}:{(int)o["i"]!}" : null;
            records.Add((Position.Single(r.Offset.Value + 1).Encode(), key));
            next = r.Offset.Value + 1;
        }
        return records;
    }

    private static bool IsDrop(Exception e) =>
        e is WebSocketException or IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException;

    /// <summary>Publishes (p, i) for i in [0, 2500) with at most <see cref="Window"/> unacknowledged.</summary>
    private sealed class Publisher(string name, string clientId, int node)
    {
        public string Name => name;
        public Dictionary<int, string> Acked { get; } = [];
        public int Connections { get; private set; }
        public int Unavailable { get; private set; }
        public int Dropped { get; private set; }
        public int Resent { get; private set; }

        public async Task RunAsync(NodeFailureTests test, Action onAck, DateTime deadline)
        {
            var unacked = new SortedSet<int>();
            var next = 0;
            var current = node;
            while (Acked.Count < PerPublisher)
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"publisher {name}: {Acked.Count} of {PerPublisher} acknowledged by the deadline");
                if (!test.IsLive(current)) current = test.NextLive(current);
                WsClient client;
                try
                {
                    client = await WsClient.ConnectAsync(new Uri(test._nodes[current].WsUri + "?client=" + clientId));
                }
                catch (Exception e) when (IsDrop(e))
                {
                    current = test.NextLive(current);
                    await Task.Delay(200);
                    continue;
                }
                Connections++;
                try
                {
                    // Every publish not acknowledged yet is sent again with the same id.
                    foreach (var i in unacked)
                    {
                        Resent++;
                        await Send(client, i);
                    }
                    while (Acked.Count < PerPublisher)
                    {
                        while (unacked.Count < Window && next < PerPublisher)
                        {
                            unacked.Add(next);
                            await Send(client, next++);
                        }
                        var f = await client.ReceiveAsync(AckTimeout);
                        var type = (string?)f["type"];
                        if (type == "error" && (string?)f["code"] == ErrorCodes.Unavailable)
                        {
                            Unavailable++;
                            break; // reconnect (to another live node) and resend what is unacknowledged
                        }
                        if (type != "ack" || (string?)f["id"] is not { } id || !id.StartsWith(name + "-"))
                            throw new XunitException($"publisher {name}: unexpected reply {f.ToJsonString()}");
                        var n = int.Parse(id.AsSpan(name.Length + 1));
                        var pos = (string)f["pos"]!;
                        if (Acked.TryGetValue(n, out var before))
                        {
                            Assert.Equal(before, pos); // a repeated ack names the same position
                            continue;
                        }
                        unacked.Remove(n);
                        Acked[n] = pos;
                        onAck();
                    }
                }
                catch (Exception e) when (IsDrop(e) || e is TimeoutException)
                {
                    Dropped++;
                }
                finally
                {
                    await client.DisposeAsync();
                }
                if (Acked.Count < PerPublisher) current = test.NextLive(current);
            }
        }

        private Task Send(WsClient client, int i) =>
            client.SendAsync(new { type = "publish", id = $"{name}-{i}", topic = Topic, data = new { p = name, i } });
    }

    /// <summary>Reads until it has every message; on a dropped connection resumes with since = the last pos received.</summary>
    private sealed class Subscriber(int index, WsClient client, int node, string subscribedPos)
    {
        public int Index => index;
        public List<(string Pos, string Key)> Seen { get; } = [];
        public int Resumes { get; private set; }

        public async Task RunAsync(NodeFailureTests test, DateTime deadline)
        {
            var current = client;
            var at = node;
            var last = subscribedPos;
            try
            {
                while (Seen.Count < Total)
                {
                    if (DateTime.UtcNow > deadline) throw new TimeoutException($"subscriber {index}: {Seen.Count} of {Total} messages by the deadline");
                    JsonObject f;
                    try
                    {
                        f = await current.ReceiveAsync(TimeSpan.FromSeconds(5));
                    }
                    catch (TimeoutException)
                    {
                        continue; // quiet (e.g. while the cluster recovers): check the deadline
                    }
                    catch (InvalidOperationException)
                    {
                        await current.DisposeAsync();
                        (current, at) = await Resume(test, at, last, deadline);
                        continue;
                    }
                    if ((string?)f["type"] != "message" || (string?)f["topic"] != Topic)
                        throw new XunitException($"subscriber {index}: unexpected frame {f.ToJsonString()}");
                    last = (string)f["pos"]!;
                    var data = f["data"]!.AsObject();
                    Seen.Add((last, $"{(string)data["p"]!}:{(int)data["i"]!}"));
                }
                // Anything already queued behind the last message (a duplicate) arrives before the pong.
                await current.SendAsync(new { type = "ping", id = "end" });
                var after = new List<JsonObject>();
                await current.ReplyToAsync("end", after, TimeSpan.FromSeconds(30));
                foreach (var m in after)
                    Seen.Add(((string)m["pos"]!, $"{(string?)m["data"]?["p"]}:{(int?)m["data"]?["i"]}"));
            }
            finally
            {
                await current.DisposeAsync();
            }
        }

        private async Task<(WsClient, int)> Resume(NodeFailureTests test, int from, string since, DateTime deadline)
        {
            Resumes++;
            var at = from;
            while (true)
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"subscriber {index}: could not resume by the deadline");
                at = test.NextLive(at);
                WsClient? c = null;
                JsonObject reply;
                try
                {
                    c = await WsClient.ConnectAsync(test._nodes[at].WsUri);
                    reply = await c.SubscribeAsync(Topic, "resume", new { since });
                }
                catch (Exception e) when (IsDrop(e) || e is TimeoutException)
                {
                    if (c is not null) await c.DisposeAsync();
                    await Task.Delay(200);
                    continue;
                }
                Assert.True((bool?)reply["recovered"] == true, $"subscriber {index}: resume from {since} not recovered: {reply.ToJsonString()}");
                return (c, at);
            }
        }
    }
}
