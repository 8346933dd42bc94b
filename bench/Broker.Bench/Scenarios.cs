using System.Diagnostics;

namespace Broker.Bench;

/// <summary>The load scenarios. Each is bounded by its counts and by <c>deadline</c> (--timeout).</summary>
public static class Scenarios
{
    private const int ConnectParallelism = 32;

    public static Task Run(Options o, Result r, CancellationToken deadline)
    {
        r.Param("target", r.Target);
        if (o.Target != Target.Nats) r.Param("batch", o.Endpoint.Batch).Param("compress", o.Endpoint.Compress);
        r.Param("payload", o.Payload.Json ? "json (~300 B order update)" : $"{o.Payload.Size} B padded");
        r.Param("topic prefix", o.Prefix);
        if (o.Keys > 0) r.Param("keys", o.Keys);
        var probe = new Probe(o.Int("server-pid", 0));
        return o.Scenario switch
        {
            "fanout" => Fanout(o, r, probe, deadline),
            "fanout-max" => FanoutMax(o, r, probe, deadline),
            "many-topics" => ManyTopics(o, r, probe, deadline),
            "publish" => Publish(o, r, probe, latency: false, deadline),
            "ack-latency" => Publish(o, r, probe, latency: true, deadline),
            "idle" => Idle(o, r, probe, 10_000, 1, deadline),
            "topics" => Idle(o, r, probe, 100, 1000, deadline),
            "replay" => Replay(o, r, deadline),
            _ => LastN.Run(o, r, probe, deadline),
        };
    }

    // ---- fanout ---------------------------------------------------------------------------

    /// <summary>N subscribers on one topic, one publisher at a fixed rate; --lenient for overload.</summary>
    public static async Task Fanout(Options o, Result r, Probe probe, CancellationToken deadline)
    {
        int n = o.Int("subscribers", 1000), rate = o.Int("rate", 120), t = o.Int("seconds", 10), warmup = o.Int("warmup", 2);
        var lenient = o.Int("lenient", 0) > 0;
        r.Param("subscribers", n).Param("rate/s", rate).Param("seconds", t).Param("warm-up s", warmup);

        await using var g = await Group.JoinAsync(o, [Topic(o, "fan")], n, deadline);
        r.Metric("connect+subscribe s", g.JoinSeconds);
        var pub = await Publisher.OpenAsync(o.Endpoint, g.Topics, o.Payload, o.Int("window", 4096), o.Keys, deadline);
        g.Add(pub);
        if (warmup > 0)
        {
            await Step.Run(g, pub, 0, rate, warmup, TimeSpan.FromSeconds(5), 0, probe, deadline);
            await g.QuiesceAsync(deadline);
        }
        var s = await Step.Run(g, pub, 1, rate, t, TimeSpan.FromSeconds(o.Int("drain", 10)), 0, probe, deadline);
        s.Report(r, probe, detailed: true);
        if (!lenient) s.Problems(r);
        else
        {
            r.Metric("missing deliveries", s.Outcome.Missing);
            s.Problems(r, lossAllowed: true);
        }
        await g.ReportEndsAsync(r, lenient);
    }

    /// <summary>The highest publish rate to N subscribers with every message delivered and p99 under the limit.</summary>
    public static async Task FanoutMax(Options o, Result r, Probe probe, CancellationToken deadline)
    {
        int n = o.Int("subscribers", 1000);
        r.Param("subscribers", n).Param("step s", o.Int("step-seconds", 5)).Param("p99 limit ms", o.Int("p99-ms", 100));
        await Search(o, r, probe, "fan", 1, n, o.Int("start", 100), deadline);
    }

    /// <summary>T topics × P subscribers, one publisher round robin at a fixed rate; then (--search) the highest passing rate.</summary>
    public static async Task ManyTopics(Options o, Result r, Probe probe, CancellationToken deadline)
    {
        int topics = o.Int("topics", 1000), per = o.Int("per-topic", 2), rate = o.Int("rate", 5000), t = o.Int("seconds", 10), p99 = o.Int("p99-ms", 50);
        r.Param("topics", topics).Param("subscribers per topic", per).Param("rate/s", rate).Param("seconds", t).Param("p99 limit ms", p99);
        if (o.Int("search", 1) == 0)
        {
            await using var g = await Group.JoinAsync(o, Enumerable.Range(0, topics).Select(_ => Topic(o, "many")).ToArray(), topics * per, deadline);
            r.Metric("connect+subscribe s", g.JoinSeconds);
            var pub = await Publisher.OpenAsync(o.Endpoint, g.Topics, o.Payload, o.Int("window", 4096), o.Keys, deadline);
            g.Add(pub);
            var s = await Step.Run(g, pub, 1, rate, t, TimeSpan.FromSeconds(o.Int("drain", 10)), p99, probe, deadline);
            s.Report(r, probe, detailed: true);
            r.Metric("passed", s.Passed);
            s.Problems(r, lossAllowed: true);
            await g.ReportEndsAsync(r, lenient: true);
            return;
        }
        await Search(o, r, probe, "many", topics, topics * per, rate, deadline, fixedRate: (rate, t, p99));
    }

    /// <summary>
    /// Rate search: doubling from <paramref name="start"/> while steps pass (halving while they fail), then
    /// --bisect steps of bisection; a rate fails only when --retries + 1 steps at it failed. A step passes when the publisher kept the rate, every message was
    /// delivered within --drain s of the last publish, nothing was duplicated or reordered, and p99 end
    /// to end stayed under --p99-ms. A failed step is followed by a quiet pause; subscribers the server
    /// closed are replaced (fresh topics). With <paramref name="fixedRate"/> a first, longer step at that
    /// rate is reported on its own (many-topics).
    /// </summary>
    private static async Task Search(Options o, Result r, Probe probe, string scenario, int topicCount, int subscribers, int start, CancellationToken deadline,
        (int Rate, int Seconds, int P99)? fixedRate = null)
    {
        int stepSeconds = o.Int("step-seconds", 5), bisect = o.Int("bisect", 3), max = o.Int("max", 12_800), p99 = o.Int("p99-ms", fixedRate?.P99 ?? 100);
        var drain = TimeSpan.FromSeconds(o.Int("drain", 3));
        string[] NewTopics() => Enumerable.Range(0, topicCount).Select(_ => Topic(o, scenario)).ToArray();
        var g = await Group.JoinAsync(o, NewTopics(), subscribers, deadline);
        try
        {
            r.Metric("connect+subscribe s", g.JoinSeconds);
            var window = o.Int("window", 4096);
            var pub = await Publisher.OpenAsync(o.Endpoint, g.Topics, o.Payload, window, o.Keys, deadline);
            g.Add(pub);
            long run = 0;
            var steps = new List<Step>();

            async Task<Step> RunStep(int rate, int seconds, TimeSpan stepDrain, int limit)
            {
                var s = await Step.Run(g, pub, ++run, rate, seconds, stepDrain, limit, probe, deadline);
                if (!s.Passed)
                {
                    await g.QuiesceAsync(deadline);
                    if (g.AnyEnded)
                    {
                        await g.DisposeAsync();
                        g = await Group.JoinAsync(o, NewTopics(), subscribers, deadline);
                        pub = await Publisher.OpenAsync(o.Endpoint, g.Topics, o.Payload, window, o.Keys, deadline);
                        g.Add(pub);
                        r.Metric($"rejoined after step {run}", g.JoinSeconds);
                    }
                }
                return s;
            }

            if (fixedRate is var (fr, fs, fp))
            {
                // many-topics: the fixed-rate measurement (after a short warm-up) is the headline.
                await Step.Run(g, pub, ++run, Math.Min(fr, 1000), 2, TimeSpan.FromSeconds(5), 0, probe, deadline);
                await g.QuiesceAsync(deadline);
                var f = await RunStep(fr, fs, TimeSpan.FromSeconds(o.Int("drain", 10)), fp);
                f.Report(r, probe, detailed: true);
                r.Metric("passed", f.Passed);
                f.Problems(r, lossAllowed: true);
                drain = TimeSpan.FromSeconds(3);
                max = o.Int("max", 64_000);
            }
            else
            {
                await Step.Run(g, pub, ++run, start, 2, TimeSpan.FromSeconds(5), 0, probe, deadline); // warm-up
                await g.QuiesceAsync(deadline);
            }

            // A failed rate is tried once more (--retries): one latency spike from other work on the
            // machine would otherwise end the search.
            var retries = o.Int("retries", 1);
            async Task<bool> Pass(int rate)
            {
                for (var attempt = 0; attempt <= retries && !deadline.IsCancellationRequested; attempt++)
                {
                    var s = await RunStep(rate, stepSeconds, drain, p99);
                    steps.Add(s);
                    if (s.Passed) return true;
                }
                return false;
            }

            int lo = 0, hi = 0, rt = start;
            var budget = Stopwatch.StartNew();
            if (await Pass(rt))
            {
                lo = rt;
                while (rt * 2 <= max)
                {
                    rt *= 2;
                    if (await Pass(rt)) lo = rt;
                    else { hi = rt; break; }
                }
            }
            else
            {
                hi = rt;
                while (rt / 2 >= 10)
                {
                    rt /= 2;
                    if (await Pass(rt)) { lo = rt; break; }
                    hi = rt;
                }
            }
            for (var i = 0; i < bisect && hi > 0 && hi - lo > Math.Max(lo / 20, 1) && !deadline.IsCancellationRequested; i++)
            {
                var mid = (lo + hi) / 2;
                if (await Pass(mid)) lo = mid;
                else hi = mid;
            }

            r.Metric("max rate msg/s", lo);
            var best = steps.Where(s => s.Passed && s.Rate == lo).LastOrDefault();
            if (best is not null)
            {
                r.Metric("deliveries/s at max", best.DeliveriesPerSecond);
                r.Latency("e2e at max", best.Outcome.EndToEnd);
                best.Cpu.Report(r, probe.HasServer, best.Outcome.Received, suffix: " at max");
            }
            r.Metric("steps", string.Join(" ", steps.Select(s => s.Summary)));
            r.Metric("search s", budget.Elapsed.TotalSeconds);
            if (hi == 0) r.Metric("note", $"every step passed up to --max {max}");
            if (deadline.IsCancellationRequested) r.Problem("search cut short by --timeout");
            foreach (var s in steps) s.Problems(r, lossAllowed: true); // duplicates, reordering, errors
        }
        finally
        {
            await g.DisposeAsync();
        }
    }

    /// <summary>One paced publish run to a group and what came of it.</summary>
    private sealed class Step
    {
        public required int Rate { get; init; }
        public required int Count { get; init; }
        public required Publisher Pub { get; init; }
        public required Group.Outcome Outcome { get; init; }
        public required Probe.Window Cpu { get; init; }
        public required double Seconds { get; init; }
        public required bool PublishedAll { get; init; }
        public required int P99Limit { get; init; }
        public required long Frames { get; init; }
        public required long ArrayFrames { get; init; }
        public required long Bytes { get; init; }
        /// <summary>Messages the subscribers received in the window, of any run (a previous step's late ones too): what the bytes carried.</summary>
        public required long Messages { get; init; }
        public int Acked { get; init; }
        public int Sent { get; init; }
        public double SendSeconds { get; init; }
        public LatencySummary Ack { get; init; }

        public long Deliveries => Outcome.Received;
        public double DeliveriesPerSecond => Outcome.Received / Seconds;
        public bool Passed => PublishedAll && Outcome.Missing == 0 && Outcome.Clean && (P99Limit <= 0 || Outcome.EndToEnd.P99 < P99Limit);

        public string Summary => $"{Rate}{(Passed ? "✓" : "✗")}({Why})";

        private string Why =>
            !PublishedAll ? $"published {Sent}/{Count} in {SendSeconds:0.0}s"
            : Outcome.Missing > 0 ? $"{(double)(Outcome.Due - Outcome.Missing) / Outcome.Due:P1} delivered"
            : !Outcome.Clean ? "dup/order"
            : $"p99 {Outcome.EndToEnd.P99:0}ms";

        public static async Task<Step> Run(Group g, Publisher pub, long run, int rate, int seconds, TimeSpan drain, int p99Limit, Probe probe, CancellationToken ct)
        {
            var count = Math.Max(1, (int)Math.Ceiling((double)rate * seconds / g.Topics.Length)) * g.Topics.Length;
            g.Expect(run, count);
            var (frames0, arrays0, bytes0, messages0) = g.ClientCounters();
            var a = probe.Take();
            var start = Stopwatch.GetTimestamp();
            // CPU and bytes are sampled every 200 ms, so that the window can end at the last delivery
            // (time spent waiting for messages that never come does not dilute the figures).
            var samples = new List<Probe.Snapshot> { a };
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        await Task.Delay(200, sampling.Token);
                        var x = probe.Take();
                        lock (samples) samples.Add(x);
                    }
                }
                catch (OperationCanceledException) { }
            }, CancellationToken.None);
            // The pacer may run a little late; sending stops 10% + 1 s after the nominal end.
            var maxSend = TimeSpan.FromSeconds(seconds * 1.1 + 1);
            var publishing = pub.RunAsync(run, count, rate, maxSend, ct);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(maxSend + drain);
            try
            {
                await publishing.WaitAsync(limit.Token);
                limit.CancelAfter(drain); // deliveries: at most drain after the publisher finished
                await Task.WhenAll(g.DoneTasks()).WaitAsync(limit.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
            var outcome = g.Collect();
            var b = probe.Take();
            await sampling.CancelAsync();
            await sampler;
            // The measured window ends with the last delivery of this run (or now, when none came).
            var end = outcome.AllDone ? outcome.LastDoneAt : outcome.LastAt > start ? outcome.LastAt : b.At;
            Probe.Snapshot atEnd;
            lock (samples) atEnd = samples.Append(b).First(x => x.At >= end);
            var (frames1, arrays1, bytes1, messages1) = g.ClientCounters();
            var published = publishing.IsCompletedSuccessfully && publishing.Result && pub.Sent == count;
            return new Step
            {
                Rate = rate, Count = count, Pub = pub, Outcome = outcome, Cpu = Probe.Between(a, atEnd),
                Seconds = Math.Max(1e-3, Stopwatch.GetElapsedTime(start, end).TotalSeconds),
                PublishedAll = published && (!pub.AcksPublishes || pub.Acked == count), P99Limit = p99Limit,
                Frames = frames1 - frames0, ArrayFrames = arrays1 - arrays0, Bytes = bytes1 - bytes0, Messages = messages1 - messages0,
                Acked = pub.Acked, Sent = pub.Sent, SendSeconds = pub.SendSeconds, Ack = Histogram.Summarize([pub.AckLatency]),
            };
        }

        public void Report(Result r, Probe probe, bool detailed)
        {
            r.Metric("published", Pub.AcksPublishes ? $"{Acked} acked / {Count}" : $"{Sent} sent / {Count}");
            r.Metric("publish rate/s", Sent / Math.Max(1e-3, SendSeconds));
            r.Metric("deliveries", $"{Outcome.Received} / {Outcome.Due}");
            r.Metric("delivered fraction", Outcome.Due == 0 ? 0 : (double)(Outcome.Due - Outcome.Missing) / Outcome.Due);
            r.Metric("all delivered", Outcome.Missing == 0);
            r.Metric("deliveries/s", DeliveriesPerSecond);
            r.Latency("e2e", Outcome.EndToEnd);
            if (Pub.AcksPublishes) r.Latency("publish→ack", Ack);
            Cpu.Report(r, probe.HasServer, Outcome.Received);
            if (!detailed) return;
            if (Messages > 0)
            {
                r.Metric("wire bytes per delivery", (double)Cpu.WireBytes / Messages);
                r.Metric("payload bytes per delivery", (double)Bytes / Messages);
            }
            r.Metric("frames received", Frames).Metric("array frames received", ArrayFrames);
            r.Metric("subscribers with every message", $"{Outcome.Complete} / {Outcome.Subscribers}");
        }

        public void Problems(Result r, bool lossAllowed = false)
        {
            if (!lossAllowed && !PublishedAll) r.Problem($"published {Sent} of {Count}{(Pub.AcksPublishes ? $", {Acked} acked" : "")}");
            if (!lossAllowed && Outcome.Missing > 0) r.Problem($"{Outcome.Subscribers - Outcome.Complete} subscribers missed messages ({Outcome.Missing} deliveries missing)");
            if (Outcome.Duplicates > 0) r.Problem($"rate {Rate}: {Outcome.Duplicates} duplicate deliveries");
            if (Outcome.OutOfOrder > 0) r.Problem($"rate {Rate}: {Outcome.OutOfOrder} deliveries out of publish order");
            if (Outcome.Foreign > 0) r.Problem($"rate {Rate}: {Outcome.Foreign} deliveries of another topic or out of range");
            if (Outcome.WrongKey > 0) r.Problem($"rate {Rate}: {Outcome.WrongKey} deliveries without their key");
            var errors = Pub.Errors.Select(e => $"{e.Key} ×{e.Value}").ToArray();
            if (errors.Length > 0) r.Problem($"rate {Rate}: publish errors: {string.Join(", ", errors)}");
        }
    }

    /// <summary>Subscribers spread over topics (subscriber j on topic j % T), and the publishers of a scenario.</summary>
    private sealed class Group : IAsyncDisposable
    {
        private readonly List<Publisher> _pubs = [];
        public required Subscriber[] Subs { get; init; }
        public required string[] Topics { get; init; }
        public double JoinSeconds { get; init; }

        /// <summary>Connects and subscribes, --join-parallel at a time, each waiting for its <c>subscribed</c>.</summary>
        public static async Task<Group> JoinAsync(Options o, string[] topics, int subscribers, CancellationToken ct)
        {
            var start = Stopwatch.GetTimestamp();
            var subs = await OpenAll(subscribers, async j =>
            {
                var s = await Subscriber.OpenAsync(o.Endpoint, o.Keys, ct);
                await s.SubscribeAsync([topics[j % topics.Length]], 0, 1, ct);
                await s.Subscribed.WaitAsync(ct);
                return s;
            }, o.Int("join-parallel", 16), ct);
            return new Group { Subs = subs, Topics = topics, JoinSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds };
        }

        public void Add(Publisher p) => _pubs.Add(p);

        public void Expect(long run, int publishes)
        {
            var t = Topics.Length;
            for (var j = 0; j < Subs.Length; j++) Subs[j].Expect(run, publishes / t, t, j % t);
        }

        public IEnumerable<Task> DoneTasks() => Subs.Select(s => s.Run.Done);

        public (long Frames, long Arrays, long Bytes, long Messages) ClientCounters()
        {
            long f = 0, a = 0, b = 0, m = 0;
            foreach (var s in Subs) { f += s.Client.Frames; a += s.Client.ArrayFrames; b += s.Client.Bytes; m += s.Messages; }
            return (f, a, b, m);
        }

        public bool AnyEnded => Subs.Any(s => s.Ended.IsCompleted) || _pubs.Any(p => p.Ended.IsCompleted);

        /// <summary>Waits until no subscriber has received anything for a second (at most 30 s): the previous step drained.</summary>
        public async Task QuiesceAsync(CancellationToken ct)
        {
            var until = Stopwatch.GetTimestamp() + 30 * Stopwatch.Frequency;
            while (Stopwatch.GetTimestamp() < until && !ct.IsCancellationRequested)
            {
                var last = Subs.Max(s => s.LastReceivedAt);
                if (Stopwatch.GetElapsedTime(last).TotalSeconds >= 1) return;
                await Task.Delay(250, CancellationToken.None);
            }
        }

        public readonly record struct Outcome(int Subscribers, int Complete, long Due, long Received, long Missing, long Duplicates, long OutOfOrder,
            long Foreign, long WrongKey, LatencySummary EndToEnd, bool AllDone, long LastDoneAt, long LastAt)
        {
            public bool Clean => Duplicates == 0 && OutOfOrder == 0 && Foreign == 0 && WrongKey == 0;
        }

        public Outcome Collect()
        {
            var runs = Subs.Select(s => s.Run).ToArray();
            var all = runs.All(x => x.DoneAt != 0);
            return new Outcome(runs.Length, runs.Count(x => x.Missing == 0), runs.Sum(x => (long)x.Expected), runs.Sum(x => (long)x.Received),
                runs.Sum(x => (long)x.Missing), runs.Sum(x => (long)x.Duplicates), runs.Sum(x => (long)x.OutOfOrder), runs.Sum(x => (long)x.Foreign),
                runs.Sum(x => (long)x.WrongKey), Histogram.Summarize(runs.Select(x => x.Latency)), all, all ? runs.Max(x => x.DoneAt) : 0,
                runs.Max(x => x.LastAt));
        }

        /// <summary>Connections the server closed (or that failed) before the bench closed them.</summary>
        public async Task ReportEndsAsync(Result r, bool lenient)
        {
            await Task.Yield();
            var ends = Subs.Select(s => s.Ended).Concat(_pubs.Select(p => p.Ended)).Where(e => e.IsCompleted).Select(e => e.Result).OfType<string>()
                .GroupBy(x => x).Select(g => $"{g.Key} ×{g.Count()}").ToArray();
            var errors = Subs.Select(x => x.Error).OfType<string>().GroupBy(e => e).Select(g => $"{g.Key} ×{g.Count()}").ToArray();
            if (errors.Length > 0) r.Problem($"subscribe errors: {string.Join(", ", errors)}");
            if (ends.Length == 0) return;
            if (lenient) r.Metric("connections closed by the server", string.Join(", ", ends));
            else r.Problem($"connections ended early: {string.Join(", ", ends)}");
        }

        public async ValueTask DisposeAsync() =>
            await CloseAll(Subs.Select(x => (Func<Task>)x.CloseAsync).Concat(_pubs.Select(p => (Func<Task>)p.CloseAsync)));
    }

    // ---- publish ----------------------------------------------------------------------------

    /// <summary>P connections publish as fast as their window allows (or paced: ack-latency) for a bounded time.</summary>
    public static async Task Publish(Options o, Result r, Probe probe, bool latency, CancellationToken deadline)
    {
        int p = o.Int("publishers", 1), rate = o.Int("rate", latency ? 1000 : 0), seconds = o.Int("seconds", 10);
        int m = o.Int("messages", latency ? rate * seconds : 200_000), w = o.Int("window", latency ? 64 : 1024), warmup = o.Int("warmup", 2);
        var shared = o.Int("shared-topic", 0) > 0;
        r.Param("publishers", p).Param("messages each (at most)", m).Param("window", w).Param("send for at most s", seconds)
         .Param("rate/s", rate == 0 ? "unpaced" : rate).Param("topics", shared ? "one shared" : "one per publisher");
        if (latency && o.Target == Target.Nats)
        {
            r.Metric("note", "n/a: NATS core has no per-message ack");
            return;
        }
        var sharedTopic = Topic(o, "pub");
        var pubs = await OpenAll(p, _ => Publisher.OpenAsync(o.Endpoint, [shared ? sharedTopic : Topic(o, "pub")], o.Payload, w, o.Keys, deadline), ConnectParallelism, deadline);
        try
        {
            if (warmup > 0)
                await Task.WhenAll(pubs.Select(x => x.RunAsync(0, m, rate, TimeSpan.FromSeconds(warmup), deadline)));
            var a = probe.Take();
            var start = Stopwatch.GetTimestamp();
            // Paced: every message is sent (the pacer may run a little late); unpaced: sending stops after --seconds.
            var maxSend = TimeSpan.FromSeconds(rate > 0 ? seconds * 1.1 + 1 : seconds);
            var finished = await Finish(Task.WhenAll(pubs.Select(x => x.RunAsync(1, m, rate, maxSend, deadline))), r, deadline);
            var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
            var cpu = Probe.Between(a, probe.Take());

            var sent = pubs.Sum(x => x.Sent);
            var acked = pubs.Sum(x => x.Acked);
            var acks = pubs[0].AcksPublishes;
            if (acks)
            {
                r.Metric("acked", $"{acked} / {sent} sent").Metric("publishes/s", acked / elapsed);
                r.Latency("publish→ack", Histogram.Summarize(pubs.Select(x => x.AckLatency)));
                if (acked != sent) r.Problem($"{sent - acked} publishes not acked{(finished ? "" : " (timed out)")}");
            }
            else
            {
                r.Metric("published", $"{sent} (flushed with PING/PONG; NATS core has no per-message ack)").Metric("publishes/s", sent / elapsed);
            }
            r.Metric("seconds", elapsed);
            if (latency) r.Metric("publish rate/s", sent / elapsed);
            cpu.Report(r, probe.HasServer, acks ? acked : sent, "publish");
            var errors = pubs.SelectMany(x => x.Errors).GroupBy(e => e.Key).Select(g => $"{g.Key} ×{g.Sum(e => e.Value)}").ToArray();
            if (errors.Length > 0) r.Problem($"publish errors: {string.Join(", ", errors)}");
            await ReportEnds(r, pubs.Select(x => x.Ended));
        }
        finally
        {
            await CloseAll(pubs.Select(x => (Func<Task>)x.CloseAsync));
        }
    }

    // ---- idle connections ---------------------------------------------------------------------

    /// <summary>
    /// C connections each subscribing to K topics of its own: time to open and subscribe all, and the
    /// server's resident memory growth per connection (and per topic), measured after a settle pause.
    /// </summary>
    public static async Task Idle(Options o, Result r, Probe probe, int defaultConnections, int defaultPer, CancellationToken deadline)
    {
        int c = o.Int("connections", defaultConnections), k = o.Int("per-connection", defaultPer), warm = o.Int("warm", 50), settle = o.Int("settle", 5);
        int parallel = o.Int("open-parallel", 64);
        r.Param("connections", c).Param("topics per connection", k).Param("warm-up connections", warm).Param("settle s", settle);
        if (!probe.HasServer) r.Problem("no --server-pid: memory not measured");

        // The open phase ends early enough to leave time for the settle pause and closing.
        using var openLimit = CancellationTokenSource.CreateLinkedTokenSource(deadline);
        openLimit.CancelAfter(TimeSpan.FromSeconds(Math.Max(10, o.Int("timeout", 120) - settle - 30)));
        var warmSubs = await OpenAll(warm, async _ =>
        {
            var s = await Subscriber.OpenAsync(o.Endpoint, 0, deadline);
            await s.SubscribeAsync([Topic(o, "idle")], 0, 1, deadline);
            await s.Subscribed.WaitAsync(deadline);
            return s;
        }, parallel, deadline);
        var subs = new Subscriber?[c];
        var subscribed = new bool[c];
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(settle), deadline);
            var before = probe.ServerRss();
            var a = probe.Take();
            var start = Stopwatch.GetTimestamp();
            var opened = 0;
            try
            {
                await Parallel.ForEachAsync(Enumerable.Range(0, c), new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = openLimit.Token },
                    async (i, ct) =>
                    {
                        var s = await Subscriber.OpenAsync(o.Endpoint, 0, ct);
                        subs[i] = s;
                        Interlocked.Increment(ref opened);
                        var topics = new string[k];
                        for (var j = 0; j < k; j++) topics[j] = Topic(o, "idle");
                        await s.SubscribeAsync(topics, 0, Math.Min(k, 100), ct);
                        await s.Subscribed.WaitAsync(ct);
                        subscribed[i] = true;
                    });
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or System.Net.WebSockets.WebSocketException)
            {
                r.Problem(openLimit.IsCancellationRequested ? "not all connections subscribed before the time limit" : $"open/subscribe failed: {e.Message}");
            }
            var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            var cpu = Probe.Between(a, probe.Take());
            var done = subscribed.Count(x => x);
            r.Metric("connections opened", $"{opened} / {c}").Metric("connections subscribed", $"{done} / {c}");
            r.Metric("open+subscribe s", seconds).Metric("subscribes/s", done * (double)k / seconds);
            cpu.Report(r, probe.HasServer);
            await Task.Delay(TimeSpan.FromSeconds(settle), deadline);
            var after = probe.ServerRss();
            if (probe.HasServer && opened > 0)
            {
                r.Metric("server RSS before MiB", before / 1048576.0).Metric("server RSS after MiB", after / 1048576.0);
                r.Metric("KiB per connection", (after - before) / 1024.0 / opened);
                if (k > 1 && done > 0) r.Metric("KiB per topic", (after - before) / 1024.0 / ((double)done * k));
            }
            var errors = subs.OfType<Subscriber>().Select(x => x.Error).OfType<string>().GroupBy(e => e).Select(g => $"{g.Key} ×{g.Count()}").ToArray();
            if (errors.Length > 0) r.Problem($"subscribe errors: {string.Join(", ", errors)}");
            await ReportEnds(r, subs.OfType<Subscriber>().Select(x => x.Ended).Concat(warmSubs.Select(x => x.Ended)));
        }
        finally
        {
            await CloseAll(subs.OfType<Subscriber>().Concat(warmSubs).Select(x => (Func<Task>)x.CloseAsync));
        }
    }

    // ---- replay (broker) ----------------------------------------------------------------------

    public static async Task Replay(Options o, Result r, CancellationToken deadline)
    {
        int k = o.Int("count", 5000), c = o.Int("clients", 50);
        var topic = Topic(o, "replay");
        r.Param("retained messages", k).Param("clients", c);

        var pub = await Publisher.OpenAsync(o.Endpoint, [topic], o.Payload, o.Int("window", 64), o.Keys, deadline);
        var fill = Stopwatch.GetTimestamp();
        await Finish(pub.RunAsync(0, k, 0, TimeSpan.FromMinutes(10), deadline), r, deadline);
        r.Metric("fill publishes/s", pub.Acked / Stopwatch.GetElapsedTime(fill).TotalSeconds);
        if (pub.Acked != k) r.Problem($"only {pub.Acked} of {k} messages acked before the replay");

        // --warm 1: a live subscriber first, so the node already reads the topic when the replay starts
        // and history goes through the catch-up reader (the cold case is the first subscriber of the node).
        Subscriber? warm = null;
        if (o.Int("warm", 0) > 0)
        {
            warm = await Subscriber.OpenAsync(o.Endpoint, 0, deadline);
            await warm.SubscribeAsync([topic], 0, 1, deadline);
            await warm.Subscribed.WaitAsync(deadline);
        }
        r.Param("node feed", warm is null ? "cold" : "warm");
        var subs = await OpenAll(c, _ => Subscriber.OpenAsync(o.Endpoint, o.Keys, deadline), ConnectParallelism, deadline);
        foreach (var s in subs) s.Expect(0, k);
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(subs.Select(x => x.SubscribeAsync([topic], -1, 1, deadline)));
        await Finish(Task.WhenAll(subs.Select(x => x.Run.Done)), r, deadline);
        var doneSeconds = subs.Where(x => x.Run.DoneAt != 0).Select(x => Stopwatch.GetElapsedTime(start, x.Run.DoneAt).TotalSeconds).Order().ToArray();
        var seconds = doneSeconds.Length == c ? doneSeconds[^1] : Stopwatch.GetElapsedTime(start).TotalSeconds;

        var delivered = subs.Sum(x => (long)x.Run.Received);
        r.Metric("clients with all", $"{doneSeconds.Length} / {c}").Metric("all done s", seconds)
         .Metric("first / median client done s", doneSeconds.Length == 0 ? "-" : $"{doneSeconds[0]:0.00} / {doneSeconds[doneSeconds.Length / 2]:0.00}")
         .Metric("delivered", $"{delivered} / {(long)k * c}").Metric("messages/s", delivered / seconds);
        if (subs.Sum(x => x.Run.Duplicates) is var dups and > 0) r.Problem($"{dups} duplicate deliveries");
        if (subs.Sum(x => x.Run.OutOfOrder) is var ooo and > 0) r.Problem($"{ooo} deliveries out of order");
        var errors = subs.Select(x => x.Error).OfType<string>().GroupBy(e => e).Select(g => $"{g.Key} ×{g.Count()}").ToArray();
        if (errors.Length > 0) r.Problem($"subscribe errors: {string.Join(", ", errors)}");
        await ReportEnds(r, subs.Select(x => x.Ended).Append(pub.Ended));
        await CloseAll(subs.Select(x => (Func<Task>)x.CloseAsync).Append(pub.CloseAsync));
        if (warm is not null) await warm.CloseAsync();
    }

    // ---- helpers --------------------------------------------------------------------------

    /// <summary>
    /// A fresh topic <c>&lt;prefix&gt;.&lt;scenario&gt;.&lt;random hex&gt;</c>: 24 characters, or more so that at
    /// least 12 random characters remain (≤ 200 with the longest prefix).
    /// </summary>
    public static string Topic(Options o, string scenario)
    {
        var head = $"{o.Prefix}.{scenario}.";
        return head + Guid.NewGuid().ToString("N")[..Math.Max(24 - head.Length, 12)];
    }

    public static async Task<T[]> OpenAll<T>(int count, Func<int, Task<T>> open, int parallel, CancellationToken ct)
    {
        var items = new T[count];
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct },
            async (i, _) => items[i] = await open(i));
        return items;
    }

    /// <summary>Waits for <paramref name="work"/>; false (and a problem noted) when the deadline came first.</summary>
    public static async Task<bool> Finish(Task work, Result r, CancellationToken limit, string? what = null)
    {
        try
        {
            await work.WaitAsync(limit);
            return true;
        }
        catch (OperationCanceledException)
        {
            r.Problem(what ?? "timed out (--timeout)");
            return false;
        }
    }

    /// <summary>Connections the server closed (or that failed) before the bench closed them.</summary>
    public static async Task ReportEnds(Result r, IEnumerable<Task<string?>> ends)
    {
        await Task.Yield();
        var reasons = ends.Where(e => e.IsCompleted).Select(e => e.Result).OfType<string>()
            .GroupBy(x => x).Select(g => $"{g.Key} ×{g.Count()}").ToArray();
        if (reasons.Length > 0) r.Problem($"connections ended early: {string.Join(", ", reasons)}");
    }

    public static Task CloseAll(IEnumerable<Func<Task>> closes) =>
        Parallel.ForEachAsync(closes, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (close, _) => await close());
}
