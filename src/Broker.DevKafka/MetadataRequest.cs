using System.Buffers.Binary;
using System.Text;

namespace Broker.DevKafka;

/// <summary>
/// Reads the topics of a Kafka Metadata request (API key 3, versions 0–13) and whether the client
/// allows topics to be created automatically. librdkafka's mock cluster creates an unknown topic
/// that a Metadata request names with 4 partitions, and has no setting for that; the embedded log
/// creates such topics itself first, with its own partition count (see <see cref="TcpForwarder"/>).
/// </summary>
internal static class MetadataRequest
{
    /// <summary>The Kafka API key of Metadata requests.</summary>
    public const short ApiKey = 3;

    /// <summary>The newest request layout known here (13 changed only the response).</summary>
    private const short LastKnownVersion = 13;

    /// <summary>The first version with flexible (compact, tagged) encoding.</summary>
    private const short FirstFlexibleVersion = 9;

    /// <summary>
    /// The topic names of a Metadata request that allows auto-creation; empty when it names none
    /// (all topics), forbids auto-creation, or cannot be read. <paramref name="request"/> is the
    /// request without its 4-byte size.
    /// </summary>
    public static IReadOnlyList<string> TopicsToCreate(ReadOnlySpan<byte> request)
    {
        try
        {
            return Read(request);
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException or FormatException or DecoderFallbackException)
        {
            return []; // not a request we understand: the mock handles it as it would
        }
    }

    private static IReadOnlyList<string> Read(ReadOnlySpan<byte> r)
    {
        var at = 0;
        var apiKey = BinaryPrimitives.ReadInt16BigEndian(r[at..]);
        var version = BinaryPrimitives.ReadInt16BigEndian(r[(at + 2)..]);
        if (apiKey != ApiKey || version is < 0 or > LastKnownVersion) return [];
        at += 8; // api key, version, correlation id
        var clientId = BinaryPrimitives.ReadInt16BigEndian(r[at..]); // a nullable string in every header version
        at += 2 + Math.Max((short)0, clientId);
        var flexible = version >= FirstFlexibleVersion;
        if (flexible) Varint.SkipTags(r, ref at);

        var names = new List<string>();
        int count;
        if (flexible) count = (int)Varint.ReadUnsigned(r, ref at) - 1; // compact array: N + 1, 0 = null
        else
        {
            count = BinaryPrimitives.ReadInt32BigEndian(r[at..]);
            at += 4;
        }
        for (var i = 0; i < count; i++)
        {
            if (version >= 10) at += 16; // topic id
            string? name;
            if (flexible)
            {
                var length = (int)Varint.ReadUnsigned(r, ref at) - 1; // compact nullable string
                name = length < 0 ? null : Encoding.UTF8.GetString(r.Slice(at, length));
                at += Math.Max(0, length);
                Varint.SkipTags(r, ref at);
            }
            else
            {
                var length = BinaryPrimitives.ReadInt16BigEndian(r[at..]);
                at += 2;
                name = length < 0 ? null : Encoding.UTF8.GetString(r.Slice(at, length));
                at += Math.Max((short)0, length);
            }
            if (name is { Length: > 0 }) names.Add(name);
        }
        // Versions 0–3 always create (the broker's setting decides); 4+ say whether the client allows it.
        var allowAutoCreate = version < 4 || r[at] != 0;
        return allowAutoCreate ? names : [];
    }
}
