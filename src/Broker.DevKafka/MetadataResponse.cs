using System.Buffers.Binary;
using System.Text;

namespace Broker.DevKafka;

/// <summary>
/// Rewrites the broker list of a Kafka Metadata response (API key 3, versions 0–13): each broker's
/// host and port become those of its forwarder, everything else is kept byte for byte. A client
/// that only ever reads rewritten responses only ever connects to the forwarders, so every
/// Metadata request it sends passes one (see <see cref="TcpForwarder"/>).
/// </summary>
internal static class MetadataResponse
{
    /// <summary>The newest response layout known here.</summary>
    private const short LastKnownVersion = 13;

    /// <summary>The first version with flexible (compact, tagged) encoding; its response header has tagged fields too.</summary>
    private const short FirstFlexibleVersion = 9;

    /// <summary>
    /// The response with every broker that <paramref name="forwarderOf"/> knows advertised at its
    /// forwarder; null when the response cannot be read (it is then passed on as it is).
    /// <paramref name="response"/> is the response without its 4-byte size, starting with the correlation id.
    /// </summary>
    public static byte[]? AdvertiseForwarders(ReadOnlySpan<byte> response, short version, Func<int, (string Host, int Port)?> forwarderOf)
    {
        if (version is < 0 or > LastKnownVersion) return null;
        try
        {
            return Rewrite(response, version, forwarderOf);
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException or FormatException or DecoderFallbackException)
        {
            return null;
        }
    }

    private static byte[] Rewrite(ReadOnlySpan<byte> r, short version, Func<int, (string Host, int Port)?> forwarderOf)
    {
        var flexible = version >= FirstFlexibleVersion;
        var at = 4; // correlation id
        if (flexible) Varint.SkipTags(r, ref at); // response header v1
        if (version >= 3) at += 4; // throttle_time_ms

        int count;
        if (flexible) count = (int)Varint.ReadUnsigned(r, ref at) - 1;
        else
        {
            count = BinaryPrimitives.ReadInt32BigEndian(r[at..]);
            at += 4;
        }
        var countEnd = at;
        var output = new List<byte>(r.Length + 64);
        Span<byte> int16 = stackalloc byte[2];
        Span<byte> int32 = stackalloc byte[4];
        output.AddRange(r[..countEnd]);
        for (var i = 0; i < count; i++)
        {
            var nodeId = BinaryPrimitives.ReadInt32BigEndian(r[at..]);
            var nodeIdAt = at;
            at += 4;
            string host;
            if (flexible)
            {
                var length = (int)Varint.ReadUnsigned(r, ref at) - 1;
                host = Encoding.UTF8.GetString(r.Slice(at, length));
                at += length;
            }
            else
            {
                var length = BinaryPrimitives.ReadInt16BigEndian(r[at..]);
                at += 2;
                host = Encoding.UTF8.GetString(r.Slice(at, length));
                at += length;
            }
            var port = BinaryPrimitives.ReadInt32BigEndian(r[at..]);
            at += 4;
            var restAt = at; // rack (v1+) and tagged fields (flexible), kept as they are
            if (version >= 1)
            {
                if (flexible)
                {
                    var length = (int)Varint.ReadUnsigned(r, ref at) - 1;
                    at += Math.Max(0, length);
                }
                else
                {
                    var length = BinaryPrimitives.ReadInt16BigEndian(r[at..]);
                    at += 2 + Math.Max((short)0, length);
                }
            }
            if (flexible) Varint.SkipTags(r, ref at);

            if (forwarderOf(nodeId) is { } forwarder) (host, port) = forwarder;
            output.AddRange(r.Slice(nodeIdAt, 4));
            var name = Encoding.UTF8.GetBytes(host);
            if (flexible) Varint.WriteUnsigned(output, (uint)name.Length + 1);
            else
            {
                BinaryPrimitives.WriteInt16BigEndian(int16, checked((short)name.Length));
                output.AddRange(int16);
            }
            output.AddRange(name);
            BinaryPrimitives.WriteInt32BigEndian(int32, port);
            output.AddRange(int32);
            output.AddRange(r[restAt..at]);
        }
        output.AddRange(r[at..]);
        return [.. output];
    }
}

/// <summary>The unsigned varints and tagged-field sections of Kafka's flexible versions.</summary>
internal static class Varint
{
    public static uint ReadUnsigned(ReadOnlySpan<byte> r, ref int at)
    {
        uint value = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = r[at++];
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new FormatException("varint too long");
    }

    public static void WriteUnsigned(List<byte> into, uint value)
    {
        while (value >= 0x80)
        {
            into.Add((byte)(value | 0x80));
            value >>= 7;
        }
        into.Add((byte)value);
    }

    public static void SkipTags(ReadOnlySpan<byte> r, ref int at)
    {
        var tags = ReadUnsigned(r, ref at);
        for (var i = 0u; i < tags; i++)
        {
            ReadUnsigned(r, ref at); // tag
            at += (int)ReadUnsigned(r, ref at);
        }
    }
}
