using Broker.Core.Settings;

namespace Broker.Core.Fanout;

/// <summary>The offset index of multiplexed topics (HOCON <c>broker.fanout.offset-index</c>).</summary>
/// <param name="Enabled">Off: no index; a node reads a shared Kafka topic only while it has subscribers (and its <c>feed-linger</c>).</param>
/// <param name="OffsetsPerTopic">Offsets kept per topic: <c>last: N</c> up to this many is answered from the index.</param>
/// <param name="MaxTopics">Topics indexed per shared Kafka topic on a node; past it the least recently written topic is forgotten.</param>
/// <param name="BackfillRecords">Records per partition read from the log, below where the feed started, when a node starts reading a shared Kafka topic.</param>
/// <param name="CatchUpWait">How long a <c>last: N</c> waits for the feed to reach the log's end before it scans the partition instead.</param>
/// <param name="CoalesceGap">Offsets of a topic closer than this many records are read as one range (the records between are read and skipped).</param>
public sealed record OffsetIndexSettings(bool Enabled, int OffsetsPerTopic, int MaxTopics, int BackfillRecords, TimeSpan CatchUpWait, int CoalesceGap)
{
    /// <summary>No index (today's behaviour before it existed).</summary>
    public static readonly OffsetIndexSettings Off = new(false, 0, 0, 0, TimeSpan.Zero, 0);

    /// <summary>Binds and validates <c>broker.fanout.offset-index</c>.</summary>
    public static OffsetIndexSettings Bind(SettingsReader r) => new(
        r.Switch("broker.fanout.offset-index.enabled"),
        r.Int("broker.fanout.offset-index.offsets-per-topic", 1, 1_000_000),
        r.Int("broker.fanout.offset-index.max-topics", 1),
        r.Int("broker.fanout.offset-index.backfill-records", 0),
        r.Duration("broker.fanout.offset-index.catch-up-wait", TimeSpan.Zero),
        r.Int("broker.fanout.offset-index.coalesce-gap", 0));
}

/// <summary>
/// Where the last records of each broker topic of a shared Kafka topic are: per topic, the offsets
/// of its last <c>offsets-per-topic</c> records (a ring of longs), so that <c>last: N</c> reads only
/// those records instead of scanning the topic's partition. Bounded by <c>max-topics</c>: the least
/// recently written topic is forgotten first.
/// <para>
/// Exact or silent: an answer is given only when it is known to be the topic's last N records.
/// Per partition the index knows where it started (<see cref="IndexedFrom"/>) and, as a floor, from
/// where a topic without an entry is known to have no record (forgetting a topic raises the floor
/// past its last record). An entry is complete from the floor at its creation, or — once its ring
/// dropped offsets — from its oldest offset. What the index cannot vouch for is left to the scan.
/// </para>
/// The caller (the shared feed) adds records in offset order per partition and serializes every call.
/// </summary>
internal sealed class OffsetIndex
{
    /// <summary>An entry's <see cref="Entry.CompleteFrom"/> and a partition's floor meaning "since <see cref="IndexedFrom"/>".</summary>
    private const long SinceStart = -1;

    private readonly int _perTopic;
    private readonly int _maxTopics;
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Entry>.AlternateLookup<ReadOnlySpan<char>> _byName;
    private Entry? _coldest, _hottest; // least and most recently written
    private long[] _from;
    private long[] _floor;

    /// <param name="from">Per partition, the offset the index starts at (everything from there is added).</param>
    public OffsetIndex(long[] from, int perTopic, int maxTopics)
    {
        _perTopic = perTopic;
        _maxTopics = maxTopics;
        _byName = _entries.GetAlternateLookup<ReadOnlySpan<char>>();
        _from = (long[])from.Clone();
        _floor = new long[from.Length];
        Array.Fill(_floor, SinceStart);
    }

    public int Topics => _entries.Count;

    /// <summary>Topics forgotten to stay within <c>max-topics</c>.</summary>
    public long Evicted { get; private set; }

    /// <summary>The first offset of <paramref name="partition"/> the index has read (after a backfill: where the backfill began).</summary>
    public long IndexedFrom(int partition) => _from[partition];

    /// <summary>Adds a record of <paramref name="topic"/> at <paramref name="offset"/> of <paramref name="partition"/> (the topic's partition).</summary>
    public void Add(int partition, ReadOnlySpan<char> topic, long offset)
    {
        if (!_byName.TryGetValue(topic, out var e)) e = Create(topic.ToString(), partition, SinceStartOr(partition));
        Append(e, offset);
        Touch(e);
    }

    /// <summary>
    /// The offsets of the topic's last <paramref name="n"/> records at or after <paramref name="low"/>
    /// (the partition's first retained offset), oldest first — fewer when that is all it has there —
    /// among the records added so far; null when the index cannot tell exactly.
    /// </summary>
    public long[]? Last(string topic, int partition, int n, long low)
    {
        if (n <= 0) return [];
        if (!_entries.TryGetValue(topic, out var e)) return Floor(partition) <= low ? [] : null;
        var take = 0;
        for (var i = e.Count - 1; i >= 0 && take < n && e.At(i) >= low; i--) take++;
        if (take < n && e.CoveredFrom(_from[partition]) > low) return null; // older records of the topic may exist that the index does not hold
        var offsets = new long[take];
        for (var i = 0; i < take; i++) offsets[i] = e.At(e.Count - take + i);
        return offsets;
    }

    /// <summary>The log no longer holds what the index knows of <paramref name="partition"/> (retention overtook the feed, or the log was reset): it starts afresh at <paramref name="from"/>.</summary>
    public void Reset(int partition, long from)
    {
        List<Entry>? gone = null;
        foreach (var e in _entries.Values) if (e.Partition == partition) (gone ??= []).Add(e);
        if (gone is not null) foreach (var e in gone) Remove(e);
        _from[partition] = from;
        _floor[partition] = SinceStart;
    }

    /// <summary>The shared Kafka topic gained partitions: they are read from their beginning.</summary>
    public void Widen(int partitions)
    {
        if (partitions <= _from.Length) return;
        _from = KafkaFeed.Widened(_from, partitions);
        var floor = KafkaFeed.Widened(_floor, partitions);
        for (var p = _floor.Length; p < partitions; p++) floor[p] = SinceStart;
        _floor = floor;
    }

    /// <summary>
    /// Merges what a backfill found in [<paramref name="backfill"/>.IndexedFrom, <paramref name="end"/>)
    /// of <paramref name="partition"/> (read into an index of its own, with the same limits) into this
    /// index, which started at <paramref name="end"/>. Backfilled topics are older than every topic
    /// written since: they go to the cold end, and only while there is room. False when this index no
    /// longer starts at <paramref name="end"/> (it was reset meanwhile): nothing is merged.
    /// </summary>
    public bool Merge(int partition, long end, OffsetIndex backfill)
    {
        if (partition >= _from.Length || _from[partition] != end) return false;
        var begin = backfill.Floor(partition); // a topic the backfill has no entry of has no record in [begin, end)
        for (var b = backfill._hottest; b is not null; b = b.Colder)
        {
            if (b.Partition != partition) continue;
            var covered = b.CoveredFrom(backfill._from[partition]);
            if (_entries.TryGetValue(b.Name, out var e))
            {
                // Complete since `end` (not recreated after an eviction): the backfill's records come first.
                if (e.CompleteFrom == SinceStart && !e.Dropped) e.Prepend(b, _perTopic, covered <= begin ? SinceStart : covered);
                continue;
            }
            // A topic with no entry had no record since `end` only while nothing of the partition was forgotten.
            if (_floor[partition] != SinceStart) continue;
            if (_entries.Count >= _maxTopics)
            {
                _floor[partition] = end; // this topic (and the colder ones) are not indexed: a missing entry says nothing before `end`
                continue;
            }
            var created = new Entry(b.Name, partition, covered <= begin ? SinceStart : covered);
            created.Prepend(b, _perTopic, created.CompleteFrom);
            _entries.Add(created.Name, created);
            InsertColdest(created);
        }
        _from[partition] = begin;
        return true;
    }

    /// <summary>
    /// Ranges [From, To) that hold <paramref name="offsets"/> (ascending): offsets at most
    /// <paramref name="gap"/> records apart share a range, so that a read of a few records
    /// costs one fetch instead of several.
    /// </summary>
    public static List<(long From, long To)> Coalesce(IReadOnlyList<long> offsets, int gap)
    {
        var ranges = new List<(long From, long To)>();
        if (offsets.Count == 0) return ranges;
        long from = offsets[0], to = offsets[0] + 1;
        for (var i = 1; i < offsets.Count; i++)
        {
            if (offsets[i] - to <= gap)
            {
                to = offsets[i] + 1;
                continue;
            }
            ranges.Add((from, to));
            from = offsets[i];
            to = offsets[i] + 1;
        }
        ranges.Add((from, to));
        return ranges;
    }

    /// <summary>Where a topic without an entry is known to have no record from.</summary>
    private long Floor(int partition) => _floor[partition] == SinceStart ? _from[partition] : _floor[partition];

    private long SinceStartOr(int partition) => _floor[partition];

    private Entry Create(string name, int partition, long completeFrom)
    {
        if (_entries.Count >= _maxTopics && _coldest is { } victim)
        {
            // Its records are no longer known: a topic without an entry may have records up to its last.
            _floor[victim.Partition] = Math.Max(Floor(victim.Partition), victim.At(victim.Count - 1) + 1);
            Remove(victim);
            Evicted++;
            if (victim.Partition == partition) completeFrom = _floor[partition];
        }
        var e = new Entry(name, partition, completeFrom);
        _entries.Add(name, e);
        return e;
    }

    private void Append(Entry e, long offset)
    {
        if (e.Count > 0 && offset <= e.At(e.Count - 1)) return; // seen already
        e.Append(offset, _perTopic);
    }

    /// <summary>Makes <paramref name="e"/> the most recently written.</summary>
    private void Touch(Entry e)
    {
        if (ReferenceEquals(_hottest, e)) return;
        Unlink(e);
        e.Colder = _hottest;
        e.Hotter = null;
        if (_hottest is not null) _hottest.Hotter = e;
        _hottest = e;
        _coldest ??= e;
    }

    private void InsertColdest(Entry e)
    {
        e.Hotter = _coldest;
        e.Colder = null;
        if (_coldest is not null) _coldest.Colder = e;
        _coldest = e;
        _hottest ??= e;
    }

    private void Remove(Entry e)
    {
        _entries.Remove(e.Name);
        Unlink(e);
    }

    private void Unlink(Entry e)
    {
        if (e.Hotter is not null) e.Hotter.Colder = e.Colder;
        else if (ReferenceEquals(_hottest, e)) _hottest = e.Colder;
        if (e.Colder is not null) e.Colder.Hotter = e.Hotter;
        else if (ReferenceEquals(_coldest, e)) _coldest = e.Hotter;
        e.Hotter = e.Colder = null;
    }

    /// <summary>One topic: the offsets of its last records (a ring that grows by doubling up to the limit) and its place in the recency list.</summary>
    private sealed class Entry(string name, int partition, long completeFrom)
    {
        public readonly string Name = name;
        public readonly int Partition = partition;
        /// <summary>Every record of the topic from here on was added (<see cref="SinceStart"/>: since the index's start).</summary>
        public long CompleteFrom = completeFrom;
        /// <summary>The ring was full and dropped its oldest offsets: it is complete from its oldest one.</summary>
        public bool Dropped;
        public Entry? Hotter, Colder;
        private long[] _ring = new long[2];
        private int _start;

        public int Count { get; private set; }

        /// <summary>The <paramref name="i"/>-th oldest offset held.</summary>
        public long At(int i) => _ring[(_start + i) % _ring.Length];

        /// <summary>From where every record of the topic is held (<paramref name="indexedFrom"/>: the index's start).</summary>
        public long CoveredFrom(long indexedFrom) => Dropped ? At(0) : CompleteFrom == SinceStart ? indexedFrom : CompleteFrom;

        public void Append(long offset, int capacity)
        {
            if (Count >= capacity)
            {
                _start = (_start + 1) % _ring.Length; // full: the oldest goes
                Count--;
                Dropped = true;
            }
            else if (Count == _ring.Length) Grow(Math.Min(capacity, _ring.Length * 2));
            _ring[(_start + Count) % _ring.Length] = offset;
            Count++;
        }

        /// <summary>Puts the offsets of <paramref name="older"/> (all before this entry's) in front, as many as fit; complete from <paramref name="completeFrom"/> when all fit.</summary>
        public void Prepend(Entry older, int capacity, long completeFrom)
        {
            var room = Math.Max(0, capacity - Count);
            var take = Math.Min(room, older.Count);
            var merged = new long[Math.Max(2, Count + take)];
            for (var i = 0; i < take; i++) merged[i] = older.At(older.Count - take + i);
            for (var i = 0; i < Count; i++) merged[take + i] = At(i);
            Count += take;
            _ring = merged;
            _start = 0;
            if (take < older.Count || older.Dropped) Dropped = true;
            else CompleteFrom = completeFrom;
        }

        private void Grow(int size)
        {
            var grown = new long[size];
            for (var i = 0; i < Count; i++) grown[i] = At(i);
            _ring = grown;
            _start = 0;
        }
    }
}
