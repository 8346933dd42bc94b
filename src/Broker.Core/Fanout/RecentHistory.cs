using Broker.Core.Settings;

namespace Broker.Core.Fanout;

/// <summary>Limits of the recent history a node keeps per topic of a multiplexed namespace (HOCON <c>broker.fanout.recent-history</c>).</summary>
/// <param name="Messages">Frames kept per topic (0: none; <c>last: N</c> then always reads the log).</param>
/// <param name="MaxBytes">Bytes of frames kept per shared Kafka topic on this node; past it the least recently written topics lose theirs.</param>
/// <param name="IdleExpiry">A topic without local subscribers and without a new message for this long is forgotten.</param>
public sealed record RecentHistorySettings(int Messages, long MaxBytes, TimeSpan IdleExpiry)
{
    /// <summary>No recent history: a topic without local subscribers is forgotten at the feed's next sweep.</summary>
    public static readonly RecentHistorySettings None = new(0, 0, TimeSpan.Zero);

    /// <summary>Binds and validates <c>broker.fanout.recent-history</c>.</summary>
    public static RecentHistorySettings Bind(SettingsReader r) => new(
        r.Int("broker.fanout.recent-history.messages", 0),
        r.Bytes("broker.fanout.recent-history.max-bytes", 0),
        r.Duration("broker.fanout.recent-history.idle-expiry"));
}

/// <summary>
/// The last frames of one broker topic on a shared partition, as the node's feed delivered them:
/// a ring of at most <c>capacity</c> (offset, frame) pairs. It holds every record of the topic at
/// or after <see cref="CoveredFrom"/> that the feed has dispatched, so <c>last: N</c> and a short
/// <c>since</c> are answered without reading the log.
/// </summary>
internal sealed class RecentHistory(int capacity, long coveredFrom)
{
    private long[] _offsets = [];
    private byte[][] _frames = [];
    private int _start, _count;

    /// <summary>Every record of the topic at or after this offset (of its partition) that the feed dispatched is here.</summary>
    public long CoveredFrom { get; private set; } = coveredFrom;

    public int Count => _count;

    public long Bytes { get; private set; }

    /// <summary>Adds the next record's frame; the oldest is dropped when full. Returns the bytes added (negative when it shrank).</summary>
    public long Add(long offset, byte[] frame)
    {
        if (capacity <= 0) return 0;
        if (_frames.Length < capacity)
        {
            // Grows by doubling up to the capacity: a topic with few messages holds a small ring.
            if (_count == _frames.Length)
            {
                var size = Math.Min(capacity, Math.Max(4, _frames.Length * 2));
                var offsets = new long[size];
                var frames = new byte[size][];
                for (var i = 0; i < _count; i++)
                {
                    offsets[i] = _offsets[(_start + i) % _frames.Length];
                    frames[i] = _frames[(_start + i) % _frames.Length];
                }
                (_offsets, _frames, _start) = (offsets, frames, 0);
            }
        }
        long delta = frame.Length;
        if (_count == _frames.Length)
        {
            // Full: the oldest goes, and the history now starts at the next one kept.
            delta -= _frames[_start].Length;
            _start = (_start + 1) % _frames.Length;
            _count--;
            CoveredFrom = _offsets[_start];
        }
        var at = (_start + _count) % _frames.Length;
        _offsets[at] = offset;
        _frames[at] = frame;
        _count++;
        Bytes += delta;
        return delta;
    }

    /// <summary>Forgets every frame; the history covers what the feed dispatches from <paramref name="from"/> on.</summary>
    public long Clear(long from)
    {
        var freed = Bytes;
        _offsets = [];
        _frames = [];
        _start = _count = 0;
        Bytes = 0;
        CoveredFrom = from;
        return freed;
    }

    /// <summary>The frames of records at or after <paramref name="offset"/>, oldest first.</summary>
    public List<byte[]> From(long offset)
    {
        var list = new List<byte[]>();
        for (var i = 0; i < _count; i++)
        {
            var at = (_start + i) % _frames.Length;
            if (_offsets[at] >= offset) list.Add(_frames[at]);
        }
        return list;
    }

    /// <summary>The last <paramref name="n"/> frames (all of them when fewer), oldest first.</summary>
    public List<byte[]> Last(int n)
    {
        var take = Math.Min(n, _count);
        var list = new List<byte[]>(take);
        for (var i = _count - take; i < _count; i++) list.Add(_frames[(_start + i) % _frames.Length]);
        return list;
    }
}
