using System.Buffers;
using System.Buffers.Text;

namespace Broker.Protocol;

/// <summary>
/// A position in a topic: for every partition of the topic's Kafka topic, the offset of the
/// next record after this position ("everything before it has been seen"). A message's
/// position is the reader's position once it read the message: its own offset + 1 in its
/// partition, the reader's progress in the others (with one partition, the same on every node).
/// Encoded on the wire as an opaque URL-safe string (base64url of a version byte and varints);
/// Kafka assigns the offsets, so a position is valid on every node.
/// </summary>
public readonly struct Position : IEquatable<Position>
{
    private const byte Version = 1;
    /// <summary>Most partitions a position can cover (a topic with more cannot be served).</summary>
    public const int MaxPartitions = 1024;
    private readonly long[]? _next;

    public Position(long[] nextOffsets)
    {
        ArgumentNullException.ThrowIfNull(nextOffsets);
        if (nextOffsets.Length is 0 or > MaxPartitions) throw new ArgumentOutOfRangeException(nameof(nextOffsets));
        foreach (var o in nextOffsets) ArgumentOutOfRangeException.ThrowIfNegative(o);
        _next = nextOffsets;
    }

    /// <summary>A single-partition position.</summary>
    public static Position Single(long nextOffset) => new([nextOffset]);

    public int PartitionCount => _next?.Length ?? 0;

    public bool IsDefault => _next is null;

    /// <summary>The offset of the first record after this position in <paramref name="partition"/>.</summary>
    public long NextOffset(int partition) => _next![partition];

    public string Encode() => Encode(_next ?? throw new InvalidOperationException("default position"));

    /// <summary>
    /// The wire form of the position whose next offsets are <paramref name="next"/>, without
    /// allocating a <see cref="Position"/> (the feed encodes one per record).
    /// </summary>
    public static string Encode(ReadOnlySpan<long> next)
    {
        if (next.Length is 0 or > MaxPartitions) throw new ArgumentOutOfRangeException(nameof(next));
        Span<byte> raw = stackalloc byte[1 + 5 + next.Length * 10];
        var n = 0;
        raw[n++] = Version;
        n += WriteVarint(raw[n..], (ulong)next.Length);
        foreach (var o in next) n += WriteVarint(raw[n..], (ulong)o);
        return Base64Url.EncodeToString(raw[..n]);
    }

    public static bool TryParse(ReadOnlySpan<char> text, out Position position)
    {
        position = default;
        if (text.Length is 0 or > 16_000) return false;
        Span<byte> raw = stackalloc byte[Base64Url.GetMaxDecodedLength(text.Length)];
        // The OperationStatus overload reports invalid input instead of throwing FormatException.
        if (Base64Url.DecodeFromChars(text, raw, out var consumed, out var len) != OperationStatus.Done || consumed != text.Length) return false;
        raw = raw[..len];
        if (raw.Length < 2 || raw[0] != Version) return false;
        var at = 1;
        if (!TryReadVarint(raw, ref at, out var count) || count is 0 or > MaxPartitions) return false;
        var next = new long[count];
        for (var i = 0; i < next.Length; i++)
        {
            if (!TryReadVarint(raw, ref at, out var v) || v > long.MaxValue) return false;
            next[i] = (long)v;
        }
        if (at != raw.Length) return false;
        // Reject non-canonical encodings so that a position has exactly one spelling.
        var parsed = new Position(next);
        if (!parsed.Encode().AsSpan().SequenceEqual(text)) return false;
        position = parsed;
        return true;
    }

    /// <summary>A copy of the next offsets, one per partition.</summary>
    public long[] ToArray() => (long[])(_next ?? throw new InvalidOperationException("default position")).Clone();

    /// <summary>
    /// The partition-wise maximum of two positions: everything before either has been seen. A
    /// position with fewer partitions counts as 0 (nothing seen) in the partitions it lacks.
    /// </summary>
    public static Position Max(Position a, Position b)
    {
        if (a.IsDefault) return b;
        if (b.IsDefault) return a;
        var n = Math.Max(a.PartitionCount, b.PartitionCount);
        var next = new long[n];
        for (var i = 0; i < n; i++)
            next[i] = Math.Max(i < a.PartitionCount ? a.NextOffset(i) : 0, i < b.PartitionCount ? b.NextOffset(i) : 0);
        return new Position(next);
    }

    public bool Equals(Position other)
    {
        if (_next is null || other._next is null) return _next is null && other._next is null;
        return _next.AsSpan().SequenceEqual(other._next);
    }

    public override bool Equals(object? obj) => obj is Position p && Equals(p);

    public override int GetHashCode()
    {
        var h = new HashCode();
        if (_next is not null) foreach (var o in _next) h.Add(o);
        return h.ToHashCode();
    }

    public override string ToString() => _next is null ? "(none)" : Encode();

    public static bool operator ==(Position a, Position b) => a.Equals(b);
    public static bool operator !=(Position a, Position b) => !a.Equals(b);

    private static int WriteVarint(Span<byte> dest, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            dest[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        dest[i++] = (byte)value;
        return i;
    }

    private static bool TryReadVarint(ReadOnlySpan<byte> src, ref int at, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (at >= src.Length) return false;
            var b = src[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return true;
        }
        return false;
    }
}
