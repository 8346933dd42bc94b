using System.Buffers.Text;
using Broker.Protocol;

namespace Broker.Tests.Protocol;

public sealed class PositionTests
{
    public static TheoryData<long[]> Positions => new()
    {
        new long[] { 0 },
        new long[] { 1 },
        new long[] { 127 },
        new long[] { 128 },
        new long[] { 16_383 },
        new long[] { 16_384 },
        new long[] { int.MaxValue },
        new long[] { long.MaxValue },
        new long[] { 0, 0 },
        new long[] { 0, long.MaxValue, 1, 300, 0 },
        Enumerable.Range(0, 1024).Select(i => (long)i * 9_000_000_000_000_000L / 1024).ToArray(),
        Enumerable.Repeat(long.MaxValue, 1024).ToArray(),
    };

    [Theory]
    [MemberData(nameof(Positions))]
    public void Round_trips(long[] offsets)
    {
        var pos = new Position((long[])offsets.Clone());
        var text = pos.Encode();
        Assert.True(Position.TryParse(text, out var back), text);
        Assert.Equal(pos, back);
        Assert.Equal(offsets.Length, back.PartitionCount);
        for (var i = 0; i < offsets.Length; i++) Assert.Equal(offsets[i], back.NextOffset(i));
        Assert.Equal(text, back.Encode());
        Assert.Equal(text, pos.ToString());
    }

    [Theory]
    [MemberData(nameof(Positions))]
    public void Encodes_to_url_safe_characters_only(long[] offsets)
    {
        var text = new Position(offsets).Encode();
        Assert.NotEmpty(text);
        Assert.All(text, c => Assert.True(char.IsAsciiLetterOrDigit(c) || c is '-' or '_', $"'{c}' in {text}"));
        Assert.Equal(text, Uri.EscapeDataString(text));
    }

    [Fact]
    public void Single_is_a_one_partition_position()
    {
        var p = Position.Single(5);
        Assert.Equal(1, p.PartitionCount);
        Assert.Equal(5, p.NextOffset(0));
        Assert.False(p.IsDefault);
        Assert.True(default(Position).IsDefault);
        Assert.Equal(0, default(Position).PartitionCount);
    }

    [Fact]
    public void Single_positions_of_one_topic_are_distinct()
    {
        var seen = new HashSet<string>();
        for (var i = 0L; i < 5000; i++) Assert.True(seen.Add(Position.Single(i).Encode()));
    }

    private static string Raw(params byte[] bytes) => Base64Url.EncodeToString(bytes);

    public static TheoryData<string> Invalid => new()
    {
        "",
        " ",
        "!",
        "garbage!",
        "AQEF!",
        "AQ+F",                         // standard base64, not base64url
        "AQ/F",
        "AQEF=",
        "AQEF==",
        " AQEF",
        "AQEF ",
        "AQ EF",
        "AQEF\n",
        "A",
        Raw(1),                         // version only
        Raw(0, 1, 5),                   // version 0
        Raw(2, 1, 5),                   // version 2
        Raw(255, 1, 5),
        Raw(1, 0),                      // no partitions
        Raw(1, 2, 5),                   // truncated: two partitions, one offset
        Raw(1, 1),                      // truncated: no offset
        Raw(1, 1, 0x85),                // truncated varint
        Raw(1, 1, 5, 0),                // trailing byte
        Raw(1, 1, 5, 5),
        Raw(1, 1, 0x85, 0x00),          // non-canonical varint (5 in two bytes)
        Raw(1, 0x81, 0x00, 5),          // non-canonical count
        Raw(1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), // 2^63: above long.MaxValue
        Raw(1, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F), // overflows 64 bits
        Raw(1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), // 11-byte varint
        Raw(1, 0x81, 0x08),             // 1025 partitions
        Raw([1, 0x81, 0x08, .. new byte[1025]]),
        new string('A', 16_001),
        new string('A', 100_000),
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void TryParse_rejects(string text)
    {
        Assert.False(Position.TryParse(text, out var p), text);
        Assert.True(p.IsDefault);
    }

    [Fact]
    public void TryParse_accepts_a_hand_built_canonical_encoding()
    {
        Assert.True(Position.TryParse(Raw(1, 1, 5), out var p));
        Assert.Equal(Position.Single(5), p);
        Assert.True(Position.TryParse(Raw(1, 2, 0xAC, 0x02, 0), out var q));
        Assert.Equal(new Position([300, 0]), q);
    }

    [Fact]
    public void TryParse_rejects_a_truncated_real_position()
    {
        var text = new Position([1_000_000, 2_000_000]).Encode();
        for (var len = 0; len < text.Length; len++)
            Assert.False(Position.TryParse(text.AsSpan(0, len), out _), text[..len]);
    }

    [Fact]
    public void Constructor_rejects_invalid_offsets()
    {
        Assert.Throws<ArgumentNullException>(() => new Position(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Position([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Position(new long[1025]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Position([0, -1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Position.Single(-1));
        Assert.Throws<InvalidOperationException>(() => default(Position).Encode());
    }

    [Fact]
    public void Equality()
    {
        Assert.Equal(Position.Single(5), Position.Single(5));
        Assert.True(Position.Single(5) == Position.Single(5));
        Assert.True(Position.Single(5) != Position.Single(6));
        Assert.NotEqual(Position.Single(5), new Position([5, 0]));
        Assert.NotEqual(new Position([0, 5]), new Position([5, 0]));
        Assert.Equal(new Position([1, 2, 3]), new Position([1, 2, 3]));
        Assert.Equal(new Position([1, 2, 3]).GetHashCode(), new Position([1, 2, 3]).GetHashCode());
        Assert.Equal(Position.Single(long.MaxValue).GetHashCode(), Position.Single(long.MaxValue).GetHashCode());
        Assert.True(default(Position) == default);
        Assert.NotEqual(default, Position.Single(0));
        Assert.NotEqual(Position.Single(0), default);
        Assert.True(Position.Single(5).Equals((object)Position.Single(5)));
        Assert.False(Position.Single(5).Equals((object)"AQEF"));
        Assert.False(Position.Single(5).Equals(null));
    }
}
