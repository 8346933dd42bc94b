using System.Diagnostics;

namespace Broker.Bench;

/// <summary>The three load scenarios. Each is bounded by its counts and by <c>deadline</c>.</summary>
public static class Scenarios
{
    private const int ConnectParallelism = 32;

    public static async Task Publish(Options o, Result r, CancellationToken deadline)
    {
        int p = o.Int("publishers", 4), m = o.Int("messages", 5000), s = o.Int("size", 100), w = o.Int("window", 32);
        var topic = Topic(o, "pub");
        r.Param("publishers", p).Param("messages each", m).Param("data bytes", s).Param("window", w);
        TopicParams(o, r);

        var pubs = await OpenAll(p, _ => Publisher.OpenAsync(o.Uri, topic, s, m, w, o.Keys, deadline), ConnectParallelism, deadline);
        var start = Stopwatch.GetTimestamp();
        var finished = await Finish(Task.WhenAll(pubs.Select(x => x.RunAsync(0, deadline))), r, deadline);
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

        var acked = pubs.Sum(x => x.Acked);
        r.Metric("acked", $"{acked} / {p * m}").Metric("publishes/s", acked / seconds).Metric("seconds", seconds);
        r.Latency("publish→ack", Latencies.Summarize(pubs.Select(x => x.AckLatency)));
        if (acked != p * m) r.Problem($"{p * m - acked} publishes not acked{(finished ? "" : " (timed out)")}");
        ReportErrors(r, pubs);
        await ReportEnds(r, pubs.Select(x => x.Ended));
        await Task.WhenAll(pubs.Select(x => x.CloseAsync()));
    }

    public static async Task Fanout(Options o, Result r, CancellationToken deadline)
    {
        int n = o.Int("subscribers", 1000), rate = o.Int("rate", 100), t = o.Int("seconds", 10), s = o.Int("size", 100), drain = o.Int("drain", 10);
        var total = rate * t;
        var topic = Topic(o, "fan");
        r.Param("subscribers", n).Param("rate/s", rate).Param("seconds", t).Param("data bytes", s);
        TopicParams(o, r);

        // Subscribers join a few at a time, each waiting for its `subscribed` (as clients trickling in would).
        var connectStart = Stopwatch.GetTimestamp();
        var subs = await OpenAll(n, async _ =>
        {
            var sub = await Subscriber.OpenAsync(o.Uri, total, o.Keys, deadline);
            await sub.SubscribeAsync(topic, "latest", deadline);
            await sub.Subscribed.WaitAsync(deadline);
            return sub;
        }, o.Int("join-parallel", 8), deadline);
        r.Metric("connect+subscribe s", Stopwatch.GetElapsedTime(connectStart).TotalSeconds);

        var pub = await Publisher.OpenAsync(o.Uri, topic, s, total, o.Int("window", 64), o.Keys, deadline);
        var start = Stopwatch.GetTimestamp();
        await Finish(pub.RunAsync(rate, deadline), r, deadline);
        var publishSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        using (var drainLimit = CancellationTokenSource.CreateLinkedTokenSource(deadline))
        {
            drainLimit.CancelAfter(TimeSpan.FromSeconds(drain));
            await Finish(Task.WhenAll(subs.Select(x => x.Done)), r, drainLimit.Token, $"not all subscribers complete {drain}s after the last publish");
        }
        var last = subs.Max(x => x.DoneAt);
        var seconds = Stopwatch.GetElapsedTime(start, subs.All(x => x.DoneAt != 0) ? last : Stopwatch.GetTimestamp()).TotalSeconds;

        var deliveries = subs.Sum(x => (long)x.Received);
        var complete = subs.Count(x => x.Missing == 0);
        r.Metric("published (acked)", $"{pub.Acked} / {total}").Metric("publish rate/s", pub.Acked / publishSeconds)
         .Metric("deliveries", $"{deliveries} / {(long)total * n}").Metric("deliveries/s", deliveries / seconds)
         .Metric("subscribers with every message", $"{complete} / {n}");
        r.Latency("end-to-end", Latencies.Summarize(subs.Select(x => x.Latency)));
        r.Latency("publish→ack", Latencies.Summarize([pub.AckLatency]));
        if (complete != n) r.Problem($"{n - complete} subscribers missed messages ({subs.Sum(x => (long)x.Missing)} deliveries missing)");
        if (subs.Sum(x => x.Duplicates) is var dups and > 0) r.Problem($"{dups} duplicate deliveries");
        ReportOrder(r, o, subs, "deliveries out of publish order");
        ReportErrors(r, [pub]);
        ReportSubscribeErrors(r, subs);
        await ReportEnds(r, subs.Select(x => x.Ended).Append(pub.Ended));
        await CloseAll(subs.Select(x => (Func<Task>)x.CloseAsync).Append(pub.CloseAsync));
    }

    public static async Task Replay(Options o, Result r, CancellationToken deadline)
    {
        int k = o.Int("count", 5000), c = o.Int("clients", 50), s = o.Int("size", 100);
        var topic = Topic(o, "replay");
        r.Param("retained messages", k).Param("clients", c).Param("data bytes", s);
        TopicParams(o, r);

        var pub = await Publisher.OpenAsync(o.Uri, topic, s, k, o.Int("window", 64), o.Keys, deadline);
        var fill = Stopwatch.GetTimestamp();
        await Finish(pub.RunAsync(0, deadline), r, deadline);
        r.Metric("fill publishes/s", pub.Acked / Stopwatch.GetElapsedTime(fill).TotalSeconds);
        if (pub.Acked != k) r.Problem($"only {pub.Acked} of {k} messages acked before the replay");
        ReportErrors(r, [pub]);

        // --warm 1: a live subscriber first, so the node already reads the topic when the replay starts
        // and history goes through the catch-up reader (the cold case is the first subscriber of the node).
        var warm = o.Int("warm", 0) > 0 ? await Subscriber.OpenAsync(o.Uri, 1, 0, deadline) : null;
        if (warm is not null)
        {
            await warm.SubscribeAsync(topic, "latest", deadline);
            await warm.Subscribed.WaitAsync(deadline);
        }
        r.Param("node feed", warm is null ? "cold" : "warm");
        var subs = await OpenAll(c, _ => Subscriber.OpenAsync(o.Uri, k, o.Keys, deadline), ConnectParallelism, deadline);
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(subs.Select(x => x.SubscribeAsync(topic, "earliest", deadline).AsTask()));
        await Finish(Task.WhenAll(subs.Select(x => x.Done)), r, deadline);
        var doneSeconds = subs.Where(x => x.DoneAt != 0).Select(x => Stopwatch.GetElapsedTime(start, x.DoneAt).TotalSeconds).Order().ToArray();
        var seconds = doneSeconds.Length == c ? doneSeconds[^1] : Stopwatch.GetElapsedTime(start).TotalSeconds;

        var delivered = subs.Sum(x => (long)x.Received);
        r.Metric("clients with all", $"{doneSeconds.Length} / {c}").Metric("all done s", seconds)
         .Metric("first / median client done s", doneSeconds.Length == 0 ? "-" : $"{doneSeconds[0]:0.00} / {doneSeconds[doneSeconds.Length / 2]:0.00}")
         .Metric("delivered", $"{delivered} / {(long)k * c}").Metric("messages/s", delivered / seconds);
        if (subs.Sum(x => x.Duplicates) is var dups and > 0) r.Problem($"{dups} duplicate deliveries");
        ReportOrder(r, o, subs, "deliveries out of order");
        ReportSubscribeErrors(r, subs);
        await ReportEnds(r, subs.Select(x => x.Ended).Append(pub.Ended));
        await CloseAll(subs.Select(x => (Func<Task>)x.CloseAsync).Append(pub.CloseAsync));
        if (warm is not null) await warm.CloseAsync();
    }

    // ---- helpers --------------------------------------------------------------------------

    /// <summary>
    /// A fresh topic <c>&lt;prefix&gt;.&lt;scenario&gt;.&lt;random hex&gt;</c>: 24 characters (as before
    /// <c>--prefix</c>), or more so that at least 12 random characters remain (≤ 200 with the longest prefix).
    /// </summary>
    private static string Topic(Options o, string scenario)
    {
        var head = $"{o.Prefix}.{scenario}.";
        return head + Guid.NewGuid().ToString("N")[..Math.Max(24 - head.Length, 12)];
    }

    private static void TopicParams(Options o, Result r) => r.Param("topic prefix", o.Prefix).Param("keys", o.Keys);

    /// <summary>Out-of-order deliveries (per key with <c>--keys</c>) and, with keys, deliveries with another key.</summary>
    private static void ReportOrder(Result r, Options o, Subscriber[] subs, string what)
    {
        if (subs.Sum(x => x.OutOfOrder) is var ooo and > 0) r.Problem($"{ooo} {what}{(o.Keys == 0 ? "" : " within their key")}");
        if (subs.Sum(x => x.WrongKey) is var wrong and > 0) r.Problem($"{wrong} deliveries without their key k(s % {o.Keys})");
    }

    private static async Task<T[]> OpenAll<T>(int count, Func<int, Task<T>> open, int parallel, CancellationToken ct)
    {
        var items = new T[count];
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct },
            async (i, _) => items[i] = await open(i));
        return items;
    }

    /// <summary>Waits for <paramref name="work"/>; false (and a problem noted) when the deadline came first.</summary>
    private static async Task<bool> Finish(Task work, Result r, CancellationToken limit, string? what = null)
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

    private static void ReportErrors(Result r, IEnumerable<Publisher> pubs)
    {
        var errors = pubs.SelectMany(x => x.Errors).GroupBy(e => e.Key).Select(g => $"{g.Key} ×{g.Sum(e => e.Value)}").ToArray();
        if (errors.Length > 0) r.Problem($"publish errors: {string.Join(", ", errors)}");
    }

    private static void ReportSubscribeErrors(Result r, IEnumerable<Subscriber> subs)
    {
        var errors = subs.Select(x => x.Error).OfType<string>().GroupBy(e => e).Select(g => $"{g.Key} ×{g.Count()}").ToArray();
        if (errors.Length > 0) r.Problem($"subscribe errors: {string.Join(", ", errors)}");
    }

    /// <summary>Connections the server closed (or that failed) before the bench closed them.</summary>
    private static async Task ReportEnds(Result r, IEnumerable<Task<string?>> ends)
    {
        await Task.Yield();
        var reasons = ends.Where(e => e.IsCompleted).Select(e => e.Result).OfType<string>()
            .GroupBy(x => x).Select(g => $"{g.Key} ×{g.Count()}").ToArray();
        if (reasons.Length > 0) r.Problem($"connections ended early: {string.Join(", ", reasons)}");
    }

    private static Task CloseAll(IEnumerable<Func<Task>> closes) =>
        Parallel.ForEachAsync(closes, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (close, _) => await close());
}
