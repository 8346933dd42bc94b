using System.Diagnostics;
using Broker.Core.Log;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Fanout;

/// <summary>
/// The feed of a multiplexed namespace's shared Kafka topic: the node reads each of its partitions
/// once and dispatches every record to the local subscribers of the broker topic its key names (a
/// dictionary lookup), so a topic costs an entry here, not a consumer or a Kafka topic. A broker
/// topic lives in one partition (murmur2 of its name), so its order is that partition's order and
/// a frame's <c>pos</c> is simply the record's offset + 1 in it — the same for every subscriber on
/// every node. A record whose key is not a topic of this partition (another partitioner, no key) is
/// skipped and counted (<see cref="Misrouted"/>).
/// <para>
/// The feed also keeps each topic's recent frames (<see cref="RecentHistory"/>, bounded per topic
/// and per feed) so that <c>last: N</c> and a short <c>since</c> are served without reading the
/// log. A topic with no local subscriber and no recent message is forgotten after
/// <see cref="RecentHistorySettings.IdleExpiry"/>: an idle topic leaves nothing behind.
/// </para>
/// <para>
/// With an <see cref="OffsetIndex"/> the feed also records, in the same step, the offsets of every
/// topic's last records, so that <c>last: N</c> beyond the recent history reads only those records
/// (<see cref="LastOffsets"/>); such a feed is <see cref="KafkaFeed.Permanent"/>: it reads every
/// partition whether or not the node has subscribers.
/// </para>
/// All members of this class are called under <see cref="KafkaFeed.Gate"/>.
/// </summary>
internal sealed class SharedFeed : KafkaFeed
{
    private readonly Dictionary<string, SharedTopic> _topics = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SharedTopic>.AlternateLookup<ReadOnlySpan<char>> _byName;
    private readonly RecentHistorySettings _history;
    private readonly OffsetIndex? _index;
    private readonly LinkedList<SharedTopic> _recent = new(); // topics with history, least recently written first
    /// <summary>Per partition: a topic's history created now cannot cover records before this offset (the feed's start, or history dropped since).</summary>
    private long[] _coverageFloor;
    private long _historyBytes;
    private int _subscribers;

    /// <param name="index">The offsets of the topics' last records (null: none kept); it starts where the feed starts.</param>
    public SharedFeed(string kafkaTopic, long[] next, RecentHistorySettings history, OffsetIndex? index = null) : base(kafkaTopic, next)
    {
        _byName = _topics.GetAlternateLookup<ReadOnlySpan<char>>();
        _history = history;
        _index = index;
        _coverageFloor = (long[])next.Clone();
    }

    public override int Subscribers => _subscribers;

    /// <summary>A feed that keeps an offset index reads its shared Kafka topic for as long as the node runs.</summary>
    public override bool Permanent => _index is not null;

    public int Topics => _topics.Count;

    /// <summary>Records skipped because their key names no topic of the partition they are in.</summary>
    public long Misrouted { get; private set; }

    public long HistoryBytes => _historyBytes;

    // ---- joins -------------------------------------------------------------------------------

    /// <summary>
    /// Joins <paramref name="subscriber"/> to <paramref name="topic"/> (in <paramref name="partition"/>)
    /// at <paramref name="start"/>, the next offset it has not seen. When the feed is already past it
    /// and the topic's recent history covers the gap, the history frames are queued (by
    /// <paramref name="history"/>) and the subscriber joins in the same step; otherwise the answer is
    /// "catch up to the feed's offset" from the log.
    /// </summary>
    public JoinResult Join(string topic, int partition, long start, IFeedSubscriber subscriber, Func<List<byte[]>, bool> history)
    {
        var at = Next[partition];
        var t = GetOrAdd(topic, partition);
        if (at > start)
        {
            // History frames are the plain variant: a subscriber with a key filter or headers reads the log.
            if (t.History is { } h && h.CoveredFrom <= start && subscriber.KeyFilter is null && !subscriber.WithHeaders)
            {
                if (history(h.From(start))) AddMember(t, subscriber, -1);
                return new JoinResult(true, [at]);
            }
            ForgetIfUnused(t);
            return new JoinResult(false, [at]);
        }
        AddMember(t, subscriber, start > at ? start : -1);
        return new JoinResult(true, [start]);
    }

    /// <summary>Joins in step with the feed (from "latest"); <paramref name="joined"/> runs first with the feed's offset (it queues <c>subscribed</c>).</summary>
    public long JoinAtHead(string topic, int partition, IFeedSubscriber subscriber, Func<long, bool> joined)
    {
        var at = Next[partition];
        var t = GetOrAdd(topic, partition);
        if (joined(at)) AddMember(t, subscriber, -1);
        else ForgetIfUnused(t);
        return at;
    }

    /// <summary>
    /// <c>last: N</c> from the recent history, when the feed has dispatched the partition up to
    /// <paramref name="head"/> and the history holds N frames of the topic — or all of the topic's
    /// retained records (its history reaches back to <paramref name="retainedFrom"/>, the partition's
    /// first retained offset; -1: unknown). Then <paramref name="joined"/> runs with the feed's offset
    /// and the frames, and the subscriber joins in step. False: read the log instead.
    /// </summary>
    public bool TryJoinLast(string topic, int partition, int n, long retainedFrom, long head, IFeedSubscriber subscriber, Func<long, List<byte[]>, bool> joined)
    {
        if (Next[partition] < head) return false; // the feed has not read everything written before the subscribe yet
        if (!_topics.TryGetValue(topic, out var t) || t.History is not { } h) return false;
        if (h.Count < n && (retainedFrom < 0 || h.CoveredFrom > retainedFrom)) return false;
        if (joined(Next[partition], h.Last(n))) AddMember(t, subscriber, -1);
        return true;
    }

    /// <summary>
    /// <c>last: N</c> from the offset index: the offsets of the topic's last <paramref name="n"/>
    /// records at or after <paramref name="low"/> (the partition's first retained offset), oldest
    /// first, all below <see cref="IndexAnswer.End"/> — the feed's offset, at or past
    /// <paramref name="head"/> (the log's end a moment ago). <see cref="IndexLookup.Behind"/> while
    /// the feed has not read up to <paramref name="head"/>; <see cref="IndexLookup.Unknown"/> when the
    /// index cannot answer exactly (the topic was forgotten, or its records are older than the index).
    /// </summary>
    public IndexAnswer LastOffsets(string topic, int partition, int n, long low, long head)
    {
        if (_index is null || partition >= Next.Length) return new IndexAnswer(IndexLookup.Unknown, [], 0);
        var end = Next[partition];
        if (end < head) return new IndexAnswer(IndexLookup.Behind, [], end);
        return _index.Last(topic, partition, n, low) is { } offsets
            ? new IndexAnswer(IndexLookup.Found, offsets, end)
            : new IndexAnswer(IndexLookup.Unknown, [], end);
    }

    /// <summary>Merges a backfill of <paramref name="partition"/> that ends where the feed started (see <see cref="OffsetIndex.Merge"/>).</summary>
    public bool MergeBackfill(int partition, long end, OffsetIndex backfill) => _index is not null && _index.Merge(partition, end, backfill);

    public bool Remove(string topic, IFeedSubscriber subscriber)
    {
        if (!_topics.TryGetValue(topic, out var t) || t.Members is not { } members) return false;
        for (var i = 0; i < members.Count; i++)
        {
            if (!ReferenceEquals(members[i].Subscriber, subscriber)) continue;
            members.RemoveAt(i);
            _subscribers--;
            ForgetIfUnused(t);
            NoteEmpty();
            return true;
        }
        return false;
    }

    private void AddMember(SharedTopic t, IFeedSubscriber subscriber, long ahead)
    {
        (t.Members ??= new List<Member>(1)).Add(new Member(subscriber, ahead)); // most topics of a multiplexed namespace have one subscriber
        _subscribers++;
        EmptySince = 0;
    }

    private SharedTopic GetOrAdd(string topic, int partition)
    {
        if (_topics.TryGetValue(topic, out var t)) return t;
        t = new SharedTopic(topic, partition) { LastUsed = Stopwatch.GetTimestamp() };
        // No record of the topic since the floor was dispatched (it would have an entry): its history
        // is complete from there.
        if (_history.Messages > 0) t.History = new RecentHistory(_history.Messages, _coverageFloor[partition]);
        _topics.Add(topic, t);
        return t;
    }

    /// <summary>A topic with no subscriber and no history is removed at once.</summary>
    private void ForgetIfUnused(SharedTopic t)
    {
        if (t.Members is { Count: > 0 } || t.History is { Count: > 0 }) return;
        Forget(t);
    }

    private void Forget(SharedTopic t)
    {
        _topics.Remove(t.Name);
        if (t.History is { } h)
        {
            _historyBytes -= h.Bytes;
            // Its records before now are no longer known to any history created later.
            _coverageFloor[t.Partition] = Math.Max(_coverageFloor[t.Partition], Next[t.Partition]);
        }
        if (t.Recent is not null) _recent.Remove(t.Recent);
        t.Recent = null;
    }

    // ---- dispatch ----------------------------------------------------------------------------

    public override int Dispatch(ConsumeResult<byte[]?, byte[]?> record)
    {
        var partition = record.Partition.Value;
        var offset = record.Offset.Value;
        if (partition >= Next.Length || offset < Next[partition]) return 0;
        Next[partition] = offset + 1;
        var key = record.Message.Key;
        if (key is null || key.Length is 0 or > TopicName.MaxLength)
        {
            Misrouted++;
            return 0;
        }
        Span<char> name = stackalloc char[key.Length];
        for (var i = 0; i < key.Length; i++) name[i] = (char)key[i]; // topic names are ASCII; anything else matches no entry
        if (!_byName.TryGetValue(name, out var t))
        {
            // Nobody here reads it, and neither history nor index is kept.
            if ((_history.Messages <= 0 && _index is null) || !TopicName.IsValid(name)) return 0;
            if (KafkaPartitioner.Partition(key, Next.Length) != partition)
            {
                Misrouted++;
                return 0;
            }
            _index?.Add(partition, name, offset);
            if (_history.Messages <= 0) return 0;
            t = GetOrAdd(new string(name), partition);
        }
        else if (t.Partition != partition)
        {
            Misrouted++;
            return 0;
        }
        else _index?.Add(partition, t.Name, offset);
        t.LastUsed = Stopwatch.GetTimestamp();
        var pos = Position.Encode([offset + 1]);
        var frame = RecordFrames.Build(t.Name, record, pos, withHeaders: false, shared: true);
        if (t.History is { } h) Remember(t, h, offset, frame);
        var members = t.Members;
        if (members is null || members.Count == 0) return 0;
        byte[]? withHeaders = null;
        var delivered = 0;
        for (var i = members.Count - 1; i >= 0; i--)
        {
            var m = members[i];
            if (m.Ahead >= 0)
            {
                if (offset < m.Ahead) continue; // it has this one already
                m.Ahead = -1;
            }
            if (m.KeyFilter is { } k && !RecordFrames.KeyEquals(record, k, shared: true)) continue;
            var f = m.WithHeaders
                ? withHeaders ??= RecordFrames.HasVisibleHeaders(record) ? RecordFrames.Build(t.Name, record, pos, withHeaders: true, shared: true) : frame
                : frame;
            if (m.Subscriber.TryDeliver(f)) delivered++;
            else
            {
                members.RemoveAt(i);
                _subscribers--;
            }
        }
        NoteEmpty();
        return delivered;
    }

    private void Remember(SharedTopic t, RecentHistory h, long offset, byte[] frame)
    {
        _historyBytes += h.Add(offset, frame);
        if (t.Recent is null) t.Recent = _recent.AddLast(t);
        else if (t.Recent.Next is not null)
        {
            _recent.Remove(t.Recent);
            _recent.AddLast(t.Recent);
        }
        // Over the budget: the least recently written topics lose their history.
        while (_historyBytes > _history.MaxBytes && _recent.First is { } oldest && oldest.Value != t)
        {
            var victim = oldest.Value;
            _recent.RemoveFirst();
            victim.Recent = null;
            _historyBytes -= victim.History!.Clear(Next[victim.Partition]);
            ForgetIfUnused(victim);
        }
    }

    public override int LoseBefore(int partition, long low, long high)
    {
        var lost = 0;
        List<SharedTopic>? forget = null;
        var next = high >= 0 && Next[partition] >= low && Next[partition] <= high ? Next[partition] : low;
        foreach (var t in _topics.Values)
        {
            if (t.Partition != partition) continue;
            // What the history holds may be older than what the log retains now: start it afresh.
            if (t.History is { } h) _historyBytes -= h.Clear(next);
            if (t.Members is { } members)
            {
                for (var i = members.Count - 1; i >= 0; i--)
                {
                    var at = members[i].Ahead >= 0 ? members[i].Ahead : Next[partition];
                    if (high >= 0 && at >= low && at <= high) continue;
                    members[i].Subscriber.Lost();
                    members.RemoveAt(i);
                    _subscribers--;
                    lost++;
                }
            }
            if (t.Members is not { Count: > 0 }) (forget ??= []).Add(t);
        }
        // What the index knows of the partition may be of records the log no longer holds: it starts afresh too.
        if (next != Next[partition]) _index?.Reset(partition, next);
        Next[partition] = next;
        if (forget is not null) foreach (var t in forget) Forget(t);
        _coverageFloor[partition] = Math.Max(_coverageFloor[partition], Next[partition]);
        NoteEmpty();
        return lost;
    }

    public override void Widen(int partitions)
    {
        // The partition of a topic is murmur2(name) % partitions: a namespace's shared topic must
        // keep its partition count (documented); a grown one is read, its records checked as before.
        base.Widen(partitions);
        _index?.Widen(partitions);
        if (_coverageFloor.Length < partitions) _coverageFloor = Widened(_coverageFloor, partitions);
    }

    /// <summary>Forgets topics with no subscriber whose last message is older than the idle expiry.</summary>
    public override void Sweep(long now)
    {
        List<SharedTopic>? idle = null;
        foreach (var t in _topics.Values)
        {
            if (t.Members is { Count: > 0 }) continue;
            if (Stopwatch.GetElapsedTime(t.LastUsed, now) >= _history.IdleExpiry) (idle ??= []).Add(t);
        }
        if (idle is not null) foreach (var t in idle) Forget(t);
    }

    public override void Describe(List<TopicSubscriberCount> into, int limit)
    {
        foreach (var t in _topics.Values)
        {
            if (into.Count >= limit) return;
            if (t.Members is { Count: > 0 } m) into.Add(new TopicSubscriberCount(t.Name, KafkaTopic, m.Count));
        }
    }

    public override FeedState State(long highWatermarks)
    {
        long next = 0;
        foreach (var n in Next) next += n;
        return new FeedState(KafkaTopic, KafkaTopic, _subscribers, next, highWatermarks, Next.Length, _topics.Count, Shared: true, Misrouted);
    }

    private sealed class SharedTopic(string name, int partition)
    {
        public readonly string Name = name;
        public readonly int Partition = partition;
        public List<Member>? Members;
        public RecentHistory? History;
        public LinkedListNode<SharedTopic>? Recent;
        public long LastUsed;
    }

    private sealed class Member(IFeedSubscriber subscriber, long ahead)
    {
        public readonly IFeedSubscriber Subscriber = subscriber;
        public readonly byte[]? KeyFilter = subscriber.KeyFilter;
        public readonly bool WithHeaders = subscriber.WithHeaders;

        /// <summary>-1 while in step with the feed; else the offset it has seen up to (it joined ahead of a lagging feed).</summary>
        public long Ahead = ahead;
    }
}

/// <summary>What the offset index answered (see <see cref="SharedFeed.LastOffsets"/>).</summary>
public enum IndexLookup
{
    /// <summary><see cref="IndexAnswer.Offsets"/> are exactly the topic's last records below <see cref="IndexAnswer.End"/>.</summary>
    Found,
    /// <summary>The feed has not yet read up to the log's end the caller saw: ask again shortly.</summary>
    Behind,
    /// <summary>The index cannot tell exactly (no index, a forgotten topic, records older than the index): scan the log.</summary>
    Unknown,
}

/// <summary>
/// A multiplexed topic's last records according to the offset index: their offsets (ascending) in its
/// partition, all below <see cref="End"/>, the feed's offset when it answered (the subscription goes
/// on live from there).
/// </summary>
public readonly record struct IndexAnswer(IndexLookup Outcome, long[] Offsets, long End)
{
    /// <summary>The offset the subscription starts at (its first record), or <see cref="End"/> when the topic has none.</summary>
    public long Start => Offsets.Length > 0 ? Offsets[0] : End;
}
