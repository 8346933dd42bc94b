using System.Runtime.Serialization;
using System.Buffers.Binary;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Broker.Core.Topics;

namespace Broker.Core.Serialization;

/// <summary>
/// Binary serializer for every broker message that crosses nodes. A hand-written, versioned
/// layout (length-prefixed UTF-8 strings and byte arrays) keeps the hot publish path free of
/// reflection and of Newtonsoft's default serializer.
/// </summary>
public sealed class BrokerSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 4711;

    private const string PublishManifest = "tp";
    private const string AckManifest = "ta";
    private const string RejectedManifest = "tr";

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        TopicCommands.Publish => PublishManifest,
        TopicCommands.PublishAck => AckManifest,
        TopicCommands.PublishRejected => RejectedManifest,
        _ => throw new ArgumentException($"{o.GetType()} is not serialized by {nameof(BrokerSerializer)}"),
    };

    public override byte[] ToBinary(object obj)
    {
        var w = new Writer();
        switch (obj)
        {
            case TopicCommands.Publish p:
                w.String(p.Topic); w.Bytes(p.Data); w.String(p.Key); w.String(p.ClientId); w.String(p.RequestId);
                break;
            case TopicCommands.PublishAck a:
                w.String(a.Topic); w.String(a.Pos); w.Bool(a.Duplicate);
                break;
            case TopicCommands.PublishRejected r:
                w.String(r.Topic); w.String(r.Code); w.String(r.Message);
                break;
            default:
                throw new ArgumentException($"{obj.GetType()} is not serialized by {nameof(BrokerSerializer)}");
        }
        return w.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        var r = new Reader(bytes);
        return manifest switch
        {
            PublishManifest => new TopicCommands.Publish(r.String()!, r.Bytes()!, r.String(), r.String(), r.String()),
            AckManifest => new TopicCommands.PublishAck(r.String()!, r.String()!, r.Bool()),
            RejectedManifest => new TopicCommands.PublishRejected(r.String()!, r.String()!, r.String()!),
            _ => throw new SerializationException($"unknown manifest {manifest}"),
        };
    }

    private sealed class Writer
    {
        private byte[] _buf = new byte[128];
        private int _len = 1; // byte 0: format version

        public Writer() => _buf[0] = 1;

        private Span<byte> Take(int n)
        {
            if (_len + n > _buf.Length) Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + n));
            var s = _buf.AsSpan(_len, n);
            _len += n;
            return s;
        }

        public void Bool(bool v) => Take(1)[0] = v ? (byte)1 : (byte)0;

        public void Bytes(byte[]? v)
        {
            BinaryPrimitives.WriteInt32LittleEndian(Take(4), v?.Length ?? -1);
            if (v is not null) v.CopyTo(Take(v.Length));
        }

        public void String(string? v)
        {
            if (v is null)
            {
                BinaryPrimitives.WriteInt32LittleEndian(Take(4), -1);
                return;
            }
            var n = Encoding.UTF8.GetByteCount(v);
            BinaryPrimitives.WriteInt32LittleEndian(Take(4), n);
            Encoding.UTF8.GetBytes(v, Take(n));
        }

        public byte[] ToArray() => _buf.AsSpan(0, _len).ToArray();
    }

    private ref struct Reader
    {
        private readonly ReadOnlySpan<byte> _buf;
        private int _at;

        public Reader(byte[] bytes)
        {
            _buf = bytes;
            if (_buf.Length == 0 || _buf[0] != 1) throw new SerializationException("unknown format version");
            _at = 1;
        }

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || _at + n > _buf.Length) throw new SerializationException("truncated message");
            var s = _buf.Slice(_at, n);
            _at += n;
            return s;
        }

        public bool Bool() => Take(1)[0] != 0;

        public byte[]? Bytes()
        {
            var n = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
            return n < 0 ? null : Take(n).ToArray();
        }

        public string? String()
        {
            var n = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
            return n < 0 ? null : Encoding.UTF8.GetString(Take(n));
        }
    }
}
