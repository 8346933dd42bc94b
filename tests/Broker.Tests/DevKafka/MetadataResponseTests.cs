using System.Buffers.Binary;
using System.Text;
using Broker.DevKafka;

namespace Broker.Tests.DevKafka;

/// <summary>The forwarder's rewrite of Metadata responses, on hand-made responses of the classic and the flexible layout.</summary>
public sealed class MetadataResponseTests
{
    private static (string, int)? Forwarder(int id) => id == 1 ? ("127.0.0.1", 9092) : null;

    [Fact]
    public void A_classic_response_names_the_forwarder_and_keeps_everything_else()
    {
        // v1: correlation id, brokers [node id, host, port, rack], controller id, topics [].
        var original = new Bytes().Int32(7).Int32(2)
            .Int32(1).String("127.0.0.1").Int32(41234).String(null)
            .Int32(2).String("other").Int32(5555).String("rack-b")
            .Int32(1).Int32(0).ToArray();
        var rewritten = MetadataResponse.AdvertiseForwarders(original, 1, Forwarder);

        var expected = new Bytes().Int32(7).Int32(2)
            .Int32(1).String("127.0.0.1").Int32(9092).String(null)
            .Int32(2).String("other").Int32(5555).String("rack-b") // no forwarder known: left as it is
            .Int32(1).Int32(0).ToArray();
        Assert.Equal(expected, rewritten);
    }

    [Fact]
    public void A_flexible_response_names_the_forwarder_with_compact_strings_and_tags()
    {
        // v12: correlation id, header tags, throttle, compact brokers [node id, host, port, rack, tags], cluster id, controller, topics, tags.
        var original = new Bytes().Int32(9).Varint(0).Int32(0).Varint(2)
            .Int32(1).Compact("localhost").Int32(41234).Compact(null).Varint(0)
            .Compact("cluster").Int32(1).Varint(1).Varint(0).ToArray();
        var rewritten = MetadataResponse.AdvertiseForwarders(original, 12, Forwarder);

        var expected = new Bytes().Int32(9).Varint(0).Int32(0).Varint(2)
            .Int32(1).Compact("127.0.0.1").Int32(9092).Compact(null).Varint(0)
            .Compact("cluster").Int32(1).Varint(1).Varint(0).ToArray();
        Assert.Equal(expected, rewritten);
    }

    [Fact]
    public void A_response_that_cannot_be_read_is_left_alone() =>
        Assert.Null(MetadataResponse.AdvertiseForwarders(new Bytes().Int32(1).Int32(5).ToArray(), 1, Forwarder));

    /// <summary>Kafka protocol encoding, big-endian.</summary>
    private sealed class Bytes
    {
        private readonly List<byte> _bytes = [];

        public Bytes Int32(int v)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(b, v);
            _bytes.AddRange(b);
            return this;
        }

        public Bytes String(string? s)
        {
            var b = new byte[2];
            BinaryPrimitives.WriteInt16BigEndian(b, (short)(s is null ? -1 : Encoding.UTF8.GetByteCount(s)));
            _bytes.AddRange(b);
            if (s is not null) _bytes.AddRange(Encoding.UTF8.GetBytes(s));
            return this;
        }

        public Bytes Varint(uint v)
        {
            while (v >= 0x80)
            {
                _bytes.Add((byte)(v | 0x80));
                v >>= 7;
            }
            _bytes.Add((byte)v);
            return this;
        }

        public Bytes Compact(string? s)
        {
            Varint(s is null ? 0u : (uint)Encoding.UTF8.GetByteCount(s) + 1);
            if (s is not null) _bytes.AddRange(Encoding.UTF8.GetBytes(s));
            return this;
        }

        public byte[] ToArray() => [.. _bytes];
    }
}
