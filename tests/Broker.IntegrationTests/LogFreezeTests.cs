using System.Diagnostics;
using Broker.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.IntegrationTests;

/// <summary>
/// The Kafka-protocol log (a standalone Broker.DevKafka process) is frozen with SIGSTOP for longer
/// than produce-timeout and request-timeout while clients publish, then resumed with SIGCONT:
/// requests sent before the freeze sit in its socket buffers and are processed when it resumes,
/// after the broker has given up on them. Every answer is checked against the log read back from
/// its start.
/// </summary>
public sealed class LogFreezeTests(ITestOutputHelper output)
{
    private const string DefinitelyNotWritten = "nothing was written";

    [Fact]
    public async Task The_log_keeps_serving_after_hundreds_of_stops_and_continues()
    {
        // The mock cluster's poll loop ended for good when a SIGCONT interrupted it (EINTR, because
        // the .NET runtime handles SIGCONT); the chaos soak lost its log that way after a pause.
        await using var log = await DevKafkaProcess.StartAsync();
        for (var i = 0; i < 300; i++)
        {
            log.Freeze();
            await Wait.UntilAsync(() => IsStopped(log.Pid), "the log process stopped");
            log.Resume();
        }
        const string topic = "freeze.sigcont";
        using (var producer = new Confluent.Kafka.ProducerBuilder<Confluent.Kafka.Null, string>(
                   new Confluent.Kafka.ProducerConfig { BootstrapServers = log.BootstrapServers, Acks = Confluent.Kafka.Acks.All, MessageTimeoutMs = 20_000 }).Build())
        {
            var result = await producer.ProduceAsync(topic, new Confluent.Kafka.Message<Confluent.Kafka.Null, string> { Value = "{\"after\":300}" });
            Assert.Equal(Confluent.Kafka.PersistenceStatus.Persisted, result.Status);
        }
        var records = LogReadBack.All(log.BootstrapServers, topic);
        Assert.Equal("{\"after\":300}", Assert.Single(records).Text);
    }

    /// <summary>The process state in /proc is T (stopped by a signal).</summary>
    private static bool IsStopped(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T');
    }

    [Fact]
    public async Task A_log_frozen_past_the_produce_timeout_writes_every_retried_message_once_and_nothing_answered_not_written()
    {
        const string topic = "freeze.t";
        const int count = 600;
        await using var log = await DevKafkaProcess.StartAsync();
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string>
        {
            ["broker.kafka.embedded.enabled"] = "off",
            ["broker.kafka.bootstrap-servers"] = log.BootstrapServers,
            ["broker.kafka.topic-creation"] = "devkafka",
            ["broker.kafka.devkafka-admin"] = log.AdminAddress,
            ["broker.kafka.produce-timeout"] = "2s",
            ["broker.kafka.query-timeout"] = "2s",
            ["broker.topics.answer-margin"] = "1s",
            ["broker.websocket.request-timeout"] = "5s",
        });
        var capture = LogCapture.Attach(broker);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));

        // A publisher with a stable identity that resends every `unavailable` with the same id.
        var retrier = new RetryingPublisher("r", topic, _ => broker.WsUri, window: 20);
        var publishing = retrier.RunAsync(count, 0, deadline.Token, paceEvery: TimeSpan.FromMilliseconds(10));
        await Wait.UntilAsync(() => retrier.AckedCount >= 100 || publishing.IsCompleted, "publishing is under way");
        Assert.False(publishing.IsCompleted);

        var clock = Stopwatch.StartNew();
        log.Freeze();
        var frozenAt = DateTime.UtcNow;

        // A client that never resends: what it was told can be compared with the log as it is.
        // The first half is sent at once (its records go out to the frozen log: their fate is
        // unknown until it answers), the second once the producer gave up on its connection (they
        // wait in the producer's queue and are never sent).
        await using var once = await broker.ConnectAsync("?client=once-" + Guid.NewGuid().ToString("N"));
        const int onceCount = 20;
        for (var i = 0; i < onceCount / 2; i++)
            await once.SendAsync(new { type = "publish", id = $"o-{i}", topic, data = new { p = "o", i } });
        await Wait.UntilAsync(() => retrier.Answers.Any(a => a.IsUnavailable && a.At > frozenAt), "the retrier was answered unavailable");
        for (var i = onceCount / 2; i < onceCount; i++)
            await once.SendAsync(new { type = "publish", id = $"o-{i}", topic, data = new { p = "o", i } });
        var onceAnswers = new Dictionary<int, System.Text.Json.Nodes.JsonObject>();
        while (onceAnswers.Count < onceCount)
        {
            var f = await once.ReceiveAsync(TimeSpan.FromSeconds(30)); // each is answered within request-timeout
            onceAnswers[int.Parse(((string)f["id"]!)[2..])] = f;
        }
        // Frozen until the broker has given up on everything it was asked to write during the freeze.
        log.Resume();
        var resumedAt = DateTime.UtcNow;
        output.WriteLine($"log frozen for {clock.Elapsed.TotalSeconds:0.0} s");

        try
        {
            await publishing.WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            var done = retrier.Acked;
            foreach (var i in Enumerable.Range(0, count).Where(i => !done.ContainsKey(i)).Take(5))
                output.WriteLine($"r-{i} not acknowledged; answers: " + string.Join(" | ", retrier.Answers.Where(a => a.Index == i).Select(a => $"{a.At:HH:mm:ss.fff} {a.Type} {a.Message}")));
            foreach (var line in capture.Lines.Where(l => l.Category.StartsWith("Akka", StringComparison.Ordinal)).TakeLast(30)) output.WriteLine($"broker: {line.Message}");
            throw;
        }
        var firstAck = retrier.FirstAckAfter(resumedAt);
        output.WriteLine($"first ack {(firstAck - resumedAt)?.TotalSeconds:0.00} s after the log resumed; all {count} acknowledged {(DateTime.UtcNow - resumedAt).TotalSeconds:0.0} s after");

        // Whatever the log still had to process from before the freeze has been processed: a fresh
        // publish after it is acknowledged.
        await using (var probe = await broker.ConnectAsync())
            await probe.PublishAsync(topic, "after", "after");

        var records = LogReadBack.All(log.BootstrapServers, topic);
        var written = records.Where(r => r.Client is not null).GroupBy(r => (r.Client, r.Id)).ToDictionary(g => g.Key, g => g.ToList());
        var twice = written.Where(kv => kv.Value.Count > 1).Select(kv => $"{kv.Key.Client}/{kv.Key.Id}").ToList();
        Assert.True(twice.Count == 0, "written more than once: " + string.Join(", ", twice));

        // The retrier: every message once, at the position its ack named (every ack of it, if several).
        var answers = retrier.Answers;
        for (var i = 0; i < count; i++)
        {
            var record = Assert.Single(written[(retrier.ClientId, $"r-{i}")]);
            Assert.Equal(retrier.DataOf(i), record.Text);
            Assert.All(answers.Where(a => a.Index == i && a.IsAck), a => Assert.Equal(record.Pos, a.Pos));
        }
        var unavailable = answers.Where(a => a.IsUnavailable).ToList();
        Assert.NotEmpty(unavailable);
        Assert.Equal(0, retrier.Unanswered); // every publish was answered, in time

        // The client that never resent: an ack is in the log at its position; "nothing was
        // written" is not in the log; an unknown outcome may be either (counted below).
        var onceClient = written.Keys.Where(k => k.Id!.StartsWith("o-", StringComparison.Ordinal)).Select(k => k.Client).Distinct().SingleOrDefault();
        int acked = 0, definite = 0, unknownWritten = 0, unknownNotWritten = 0;
        foreach (var (i, answer) in onceAnswers)
        {
            var inLog = onceClient is not null && written.TryGetValue((onceClient, $"o-{i}"), out var r) ? r[0] : null;
            if ((string?)answer["type"] == "ack")
            {
                acked++;
                Assert.NotNull(inLog);
                Assert.Equal(inLog.Pos, (string?)answer["pos"]);
                continue;
            }
            Assert.Equal("unavailable", (string?)answer["code"]);
            if (((string?)answer["message"])!.Contains(DefinitelyNotWritten, StringComparison.Ordinal))
            {
                definite++;
                Assert.True(inLog is null, $"o-{i} was answered '{answer["message"]}' but is in the log at offset {inLog?.Offset}");
            }
            else if (inLog is null) unknownNotWritten++;
            else unknownWritten++;
        }
        output.WriteLine($"retrier: {unavailable.Count} unavailable answers ({unavailable.Count(a => a.Message!.Contains(DefinitelyNotWritten))} 'nothing was written'), " +
            $"{retrier.Resent} resends, {retrier.Connections} connection(s)");
        output.WriteLine($"client without resends, {onceCount} publishes during the freeze: {acked} acked, {definite} 'nothing was written' (none in the log), " +
            $"outcome unknown: {unknownWritten} in the log, {unknownNotWritten} not");
        foreach (var g in answers.Where(a => !a.IsAck).Concat(onceAnswers.Values.Where(a => (string?)a["type"] != "ack")
                     .Select(a => new PublishAnswer(default, 0, "error", (string?)a["code"], (string?)a["message"], null)))
                     .GroupBy(a => a.Message))
            output.WriteLine($"  {g.Count()} x {g.Key}");
        foreach (var line in capture.Lines.Where(l => l.Message.Contains("settle", StringComparison.Ordinal)).Take(10)) output.WriteLine($"broker: {line.Message}");
    }
}
