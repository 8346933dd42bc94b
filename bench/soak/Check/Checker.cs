using Broker.Protocol;
using Broker.Soak.Clients;

namespace Broker.Soak.Check;

/// <summary>A claim an answer made about one (client, id) of a topic.</summary>
public sealed record Claim(string Topic, string Client, string Id, string What);

/// <summary>One figure of the result: its value, whether it must be 0, and the first cases for a human to look at.</summary>
public sealed class Figure(string key, string label, bool mustBeZero)
{
    public string Key { get; } = key;
    public string Label { get; } = label;
    public bool MustBeZero { get; } = mustBeZero;
    public long Value { get; private set; }
    public List<string> Examples { get; } = [];

    public void Add(string example, long n = 1)
    {
        Value += n;
        if (Examples.Count < 8) Examples.Add(example);
    }

    public void Count(long n = 1) => Value += n;

    public bool Failed => MustBeZero && Value != 0;
}

/// <summary>
/// Compares everything the clients were told and received with the log read back from its start.
/// A delivery is matched to its record by the message's identity (<c>p</c>, <c>s</c> in the data);
/// positions are compared with <see cref="Position"/> (the checker may decode what clients treat as opaque).
/// </summary>
public sealed class Checker
{
    public Figure Acknowledged { get; } = new("acknowledged", "acknowledged messages", false);
    public Figure LostAcked { get; } = new("lost_acked", "lost: acknowledged but not in the log", true);
    public Figure WrongAckPos { get; } = new("ack_wrong_position", "acknowledged at a position where the log does not have the message", true);
    public Figure LostUndelivered { get; } = new("lost_undelivered", "lost: in the log, not delivered to a subscriber that should have it after its last resume", true);
    public Figure WrittenTwice { get; } = new("written_twice", "written twice (same client + id more than once in the log)", true);
    public Figure DeliveredTwice { get; } = new("delivered_twice", "delivered twice to a subscriber after a resume", true);
    public Figure OutOfOrder { get; } = new("out_of_order", "out of order (per topic partition, i.e. per key)", true);
    public Figure UnavailableInLog { get; } = new("unavailable_in_log", "`unavailable` (\"nothing was written\") answers later found in the log", true);
    public Figure CutInLog { get; } = new("cut_frames_in_log", "publishes whose frame was cut off (never completed) found in the log", true);
    public Figure Phantom { get; } = new("delivered_not_in_log", "delivered but not in the log", true);
    public Figure Truncated { get; } = new("log_truncated", "log partitions truncated by retention (the run could not be checked completely)", true);
    public Figure SlowNotClosed { get; } = new("slow_readers_not_closed", "slow readers the broker did not close as slow consumers (1013)", true);
    public Figure SameMessageTwice { get; } = new("same_message_twice", "same message in the log under two ids (after a false \"nothing was written\")", false);
    public Figure UncertainAnswers { get; } = new("unavailable_uncertain", "`unavailable` answers that said the outcome is unknown (the same id resent)", false);
    public Figure RefusedAnswers { get; } = new("unavailable_answers", "`unavailable` (\"nothing was written\") and other refusals the probe publisher got", false);
    public Figure Unanswered { get; } = new("unacknowledged_at_end", "publishes without an answer when the run ended", false);
    public Figure FinalErrors { get; } = new("final_errors", "publishes refused for good (not retried by the client)", false);
    public Figure RedeliveredBeforeResume { get; } = new("redelivered_before_unconfirmed_commit", "session messages redelivered at or before a commit that was not confirmed", false);
    public Figure GapsReported { get; } = new("gaps_reported", "resumes the broker reported as not recovered (recovered: false)", false);
    public Figure Deliveries { get; } = new("deliveries", "deliveries checked", false);

    public IEnumerable<Figure> Figures =>
    [
        Acknowledged, LostAcked, LostUndelivered, WrittenTwice, DeliveredTwice, OutOfOrder, UnavailableInLog,
        WrongAckPos, CutInLog, Phantom, SlowNotClosed, Truncated,
        Deliveries, SameMessageTwice, RefusedAnswers, UncertainAnswers, Unanswered, FinalErrors, RedeliveredBeforeResume, GapsReported,
    ];

    public bool Passed => Figures.All(f => !f.Failed);

    public void Run(LogSnapshot log, IEnumerable<PublishRecord> publishes, IEnumerable<Claim> notStored, IEnumerable<Claim> uncertain,
        IEnumerable<Claim> cut, IEnumerable<Clients.SubscriberStream> streams)
    {
        foreach (var t in log.Truncated) Truncated.Add(t);
        var byMsg = new Dictionary<(string, MsgId), List<LogRecord>>();
        var byClientId = new Dictionary<(string, string, string), List<LogRecord>>();
        foreach (var r in log.All)
        {
            if (r.Msg is { } m) Add(byMsg, (r.Topic, m), r);
            if (r.Client is { } c && r.Id is { } id) Add(byClientId, (r.Topic, c, id), r);
        }

        foreach (var (key, copies) in byClientId.Where(kv => kv.Value.Count > 1))
            WrittenTwice.Add($"{key.Item1} client {key.Item2} id {key.Item3} at offsets {string.Join(", ", copies.Select(c => $"{c.Partition}:{c.Offset}"))}", copies.Count - 1);
        foreach (var (key, copies) in byMsg.Where(kv => kv.Value.Count > 1 && kv.Value.Select(r => r.Id).Distinct().Count() > 1))
            SameMessageTwice.Add($"{key.Item1} {key.Item2} under ids {string.Join(", ", copies.Select(c => c.Id))}", copies.Count - 1);

        foreach (var p in publishes)
        {
            if (p.AckPos is { } pos)
            {
                Acknowledged.Count();
                if (!byMsg.TryGetValue((p.Topic, p.Id), out var records))
                {
                    LostAcked.Add($"{p.Topic} {p.Id} acked at {pos} (t={p.AckAt:0.0}s)");
                    continue;
                }
                if (!Position.TryParse(pos, out var ack) || !records.Any(r => r.Partition < ack.PartitionCount && ack.NextOffset(r.Partition) == r.Offset + 1))
                    WrongAckPos.Add($"{p.Topic} {p.Id} acked at {pos}, in the log at {string.Join(", ", records.Select(r => $"{r.Partition}:{r.Offset}"))}");
            }
            else if (p.Error is { } error) FinalErrors.Add($"{p.Topic} {p.Id}: {error}");
            else Unanswered.Add($"{p.Topic} {p.Id} sent at t={p.SentAt:0.0}s");
        }

        foreach (var c in notStored)
        {
            RefusedAnswers.Add($"{c.Topic} {c.Client}/{c.Id}: {c.What}");
            if (byClientId.TryGetValue((c.Topic, c.Client, c.Id), out var found))
                UnavailableInLog.Add($"{c.Topic} id {c.Id} answered \"{c.What}\" but in the log at {found[0].Partition}:{found[0].Offset}");
        }
        foreach (var c in uncertain) UncertainAnswers.Add($"{c.Topic} {c.Client}/{c.Id}: {c.What}");
        foreach (var c in cut)
        {
            if (byClientId.TryGetValue((c.Topic, c.Client, c.Id), out var found))
                CutInLog.Add($"{c.Topic} {c.Client}/{c.Id} (its frame was never completed) in the log at {found[0].Partition}:{found[0].Offset}");
        }

        foreach (var s in streams) CheckStream(log, byMsg, s);
    }

    private void CheckStream(LogSnapshot log, Dictionary<(string, MsgId), List<LogRecord>> byMsg, Clients.SubscriberStream s)
    {
        var name = $"{s.Subscriber}#{s.Incarnation} {s.Topic}";
        if (s.Gaps > 0) GapsReported.Add($"{name}: {s.Gaps}", s.Gaps);
        var partitions = log.Topics.GetValueOrDefault(s.Topic) ?? [];
        Position? after = s.StartAfter is { } sa && Position.TryParse(sa, out var parsed) ? parsed : null;
        long Start(int p) => after is { } a && p < a.PartitionCount ? a.NextOffset(p) : partitions[p].Count > 0 ? partitions[p][0].Offset : 0;
        var seen = partitions.Select(_ => new HashSet<long>()).ToArray();
        var max = partitions.Select(_ => -1L).ToArray();
        var occurrences = new Dictionary<MsgId, int>();
        foreach (var d in s.Delivered)
        {
            Deliveries.Count();
            if (!byMsg.TryGetValue((s.Topic, d), out var records))
            {
                Phantom.Add($"{name}: {d}");
                continue;
            }
            var k = occurrences.GetValueOrDefault(d);
            occurrences[d] = k + 1;
            var r = records[Math.Min(k, records.Count - 1)];
            if (r.Offset < Start(r.Partition))
            {
                if (s.StrictStart) DeliveredTwice.Add($"{name}: {d} at {r.Partition}:{r.Offset}, at or before the resume position {s.StartAfter}");
                else RedeliveredBeforeResume.Add($"{name}: {d}");
                continue;
            }
            if (!seen[r.Partition].Add(r.Offset))
            {
                DeliveredTwice.Add($"{name}: {d} at {r.Partition}:{r.Offset}");
                continue;
            }
            if (r.Offset < max[r.Partition]) OutOfOrder.Add($"{name}: {d} at {r.Partition}:{r.Offset} after {r.Partition}:{max[r.Partition]}");
            max[r.Partition] = Math.Max(max[r.Partition], r.Offset);
        }
        for (var p = 0; p < partitions.Count; p++)
        {
            var end = s.Complete ? long.MaxValue : max[p];
            var missing = partitions[p].Where(r => r.Offset >= Start(p) && r.Offset <= end && !seen[p].Contains(r.Offset)).ToList();
            if (missing.Count > 0)
                LostUndelivered.Add($"{name}: {missing.Count} missing in partition {p}, first {missing[0].Msg} at offset {missing[0].Offset} (resumed after {s.StartAfter ?? "the start"})", missing.Count);
        }
    }

    private static void Add<TKey>(Dictionary<TKey, List<LogRecord>> d, TKey key, LogRecord r) where TKey : notnull
    {
        if (!d.TryGetValue(key, out var list)) d[key] = list = [];
        list.Add(r);
    }
}
