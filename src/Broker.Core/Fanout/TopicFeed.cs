using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Fanout;

/// <summary>
/// The feed of a Kafka topic that serves one broker topic. It reads every partition and keeps,
/// per partition, the offset of the next record it dispatches: its position. The <c>pos</c> of a
/// frame is the feed's position once the record is read (the record's offset + 1 in its partition,
/// the feed's progress in the others), so one frame serves every subscriber in step with the feed;
/// it is encoded at most once per record and variant (with or without headers), and only when some
/// subscriber takes it.
/// <para>
/// Handover from history to live is positional, per partition: a subscriber joins at position S.
/// If the feed has not yet dispatched past S in any partition, the subscriber is added and receives
/// every record from S on. If the feed is ahead in some partition (at F), the join answers "catch up
/// to max(S, F)". A subscriber that joins ahead of the feed in some partition (the feed lags the
/// log) skips what it has seen and gets frames with its own position until the feed reaches it.
/// </para>
/// All members of this class are called under <see cref="KafkaFeed.Gate"/>.
/// </summary>
internal sealed class TopicFeed(string kafkaTopic, string topic, long[] next) : KafkaFeed(kafkaTopic, next)
{
    private readonly List<Member> _members = [];

    public readonly string Topic = topic;

    public override int Subscribers => _members.Count;

    /// <summary>Joins <paramref name="subscriber"/> at <paramref name="start"/> (next offsets per partition; missing partitions: 0).</summary>
    public JoinResult Join(long[] start, IFeedSubscriber subscriber)
    {
        var position = Next;
        long[]? catchUp = null;
        var inStep = start.Length == position.Length;
        for (var p = 0; p < position.Length; p++)
        {
            var s = p < start.Length ? start[p] : 0;
            if (position[p] > s) (catchUp ??= Widened(start, position.Length))[p] = position[p];
            else if (position[p] != s) inStep = false;
        }
        if (catchUp is not null) return new JoinResult(false, catchUp);
        Add(subscriber, inStep ? null : Widened(start, position.Length));
        return new JoinResult(true, start);
    }

    /// <summary>Joins <paramref name="subscriber"/> in step with the feed (subscribe from "latest"); returns the feed's position.</summary>
    public long[] JoinAtHead(IFeedSubscriber subscriber)
    {
        Add(subscriber, null);
        return (long[])Next.Clone();
    }

    private void Add(IFeedSubscriber subscriber, long[]? ahead)
    {
        _members.Add(new Member(subscriber, ahead));
        EmptySince = 0;
    }

    public bool Remove(IFeedSubscriber subscriber)
    {
        for (var i = 0; i < _members.Count; i++)
        {
            if (!ReferenceEquals(_members[i].Subscriber, subscriber)) continue;
            _members.RemoveAt(i);
            NoteEmpty();
            return true;
        }
        return false;
    }

    public override void Widen(int partitions)
    {
        base.Widen(partitions);
        foreach (var m in _members)
        {
            if (m.Ahead is { } a && a.Length < partitions) m.Ahead = Widened(a, partitions);
        }
    }

    public override int Dispatch(ConsumeResult<byte[]?, byte[]?> record)
    {
        var partition = record.Partition.Value;
        var offset = record.Offset.Value;
        var position = Next;
        if (partition >= position.Length || offset < position[partition]) return 0; // already dispatched (cannot happen with one reader; cheap guard)
        position[partition] = offset + 1;
        var members = _members;
        if (members.Count == 0) return 0;
        // Only a subscriber ahead of the feed (rare, brief) gets a frame of its own.
        string? pos = null;
        byte[]? frame = null, withHeaders = null;
        var delivered = 0;
        for (var i = members.Count - 1; i >= 0; i--)
        {
            var m = members[i];
            var own = false;
            if (m.Ahead is { } ahead)
            {
                if (offset < ahead[partition]) continue; // its catch-up read delivered it
                ahead[partition] = offset + 1;
                if (ahead.AsSpan().SequenceEqual(position)) m.Ahead = null; // in step with the feed from now on
                else own = true;
            }
            if (m.KeyFilter is { } key && !RecordFrames.KeyEquals(record, key, shared: false)) continue;
            byte[] f;
            if (own) f = RecordFrames.Build(Topic, record, Position.Encode(m.Ahead), m.WithHeaders);
            else
            {
                pos ??= Position.Encode(position);
                f = m.WithHeaders
                    ? withHeaders ??= RecordFrames.HasVisibleHeaders(record) ? RecordFrames.Build(Topic, record, pos, withHeaders: true) : frame ??= RecordFrames.Build(Topic, record, pos)
                    : frame ??= RecordFrames.Build(Topic, record, pos);
            }
            if (m.Subscriber.TryDeliver(f)) delivered++;
            else members.RemoveAt(i);
        }
        NoteEmpty();
        return delivered;
    }

    public override int LoseBefore(int partition, long low, long high)
    {
        if (partition >= Next.Length) return 0;
        var lost = 0;
        for (var i = _members.Count - 1; i >= 0; i--)
        {
            var m = _members[i];
            var at = m.Ahead is { } a ? a[partition] : Next[partition];
            if (high >= 0 && at >= low && at <= high) continue;
            _members.RemoveAt(i);
            m.Subscriber.Lost();
            lost++;
        }
        // Go on from the oldest retained record; or, if the log holds the feed's offset again (it
        // answered differently a moment later), from there: in-step subscribers must not get a record twice.
        Next[partition] = high >= 0 && Next[partition] >= low && Next[partition] <= high ? Next[partition] : low;
        NoteEmpty();
        return lost;
    }

    public override void Describe(List<TopicSubscriberCount> into, int limit)
    {
        if (into.Count < limit) into.Add(new TopicSubscriberCount(Topic, KafkaTopic, _members.Count));
    }

    public override FeedState State(long highWatermarks)
    {
        long next = 0;
        foreach (var n in Next) next += n;
        return new FeedState(Topic, KafkaTopic, _members.Count, next, highWatermarks, Next.Length);
    }

    private sealed class Member(IFeedSubscriber subscriber, long[]? ahead)
    {
        public readonly IFeedSubscriber Subscriber = subscriber;
        public readonly byte[]? KeyFilter = subscriber.KeyFilter;
        public readonly bool WithHeaders = subscriber.WithHeaders;

        /// <summary>
        /// Null while the subscriber is in step with the feed (its position is the feed's). Else its
        /// own position: ahead of the feed's in some partition, never behind it.
        /// </summary>
        public long[]? Ahead = ahead;
    }
}
