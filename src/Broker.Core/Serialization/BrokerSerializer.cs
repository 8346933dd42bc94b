using System.Runtime.Serialization;
using System.Buffers.Binary;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Broker.Core.Admin;
using Broker.Core.Sessions;
using Broker.Core.Topics;

namespace Broker.Core.Serialization;

/// <summary>
/// Binary serializer for every broker message that crosses nodes. A hand-written, versioned
/// layout (length-prefixed UTF-8 strings and byte arrays) keeps the hot publish path free of
/// reflection and of Newtonsoft's default serializer.
/// <para>
/// Session events and snapshots are persisted forever, so a manifest's layout never changes once
/// written: a new shape gets a new manifest and the old one stays readable. The key filter and
/// headers option of session subscriptions are such a change: a subscription (or a list of them)
/// with a key or headers is written under a "2" manifest (<c>ss2</c>, <c>sA2</c>, <c>eS2</c>,
/// <c>eN2</c>) whose topics carry the key and the headers flag after topic and position; one with
/// neither is written exactly as before under the old manifest (<c>ss</c>, <c>sA</c>, <c>eS</c>,
/// <c>eN</c>), which reads as no key and no headers. So everything stored before still reads, and
/// during a rolling upgrade older nodes still understand every session that uses no filter; a
/// filtered one fails loudly on them (unknown manifest) rather than losing its filter silently.
/// (Trailing optional fields detected by remaining length were not chosen: they cannot follow
/// each topic inside the lists of snapshots and <c>Attached</c>, and an older node would drop
/// them without notice.)
/// </para>
/// <para>
/// Sessions store their connection facts since expiry is driven by what is stored: events
/// <c>eA</c> (a connection attached: its endpoint's path and the time) and <c>eD</c> (it went
/// away: the time), and snapshots that carry the last fact are <c>eN3</c> (the <c>eN2</c> topic
/// layout, then the fact); a snapshot without one is written as before.
/// </para>
/// <para>
/// Messages that are never stored follow the same rule so that nodes of two versions understand
/// each other during a rolling upgrade: a publish with a deadline is <c>tp2</c> (<c>tp</c> plus the
/// deadline); one without is still <c>tp</c>.
/// </para>
/// </summary>
public sealed class BrokerSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 4711;

    private const string PublishManifest = "tp";
    private const string PublishWithDeadlineManifest = "tp2";
    private const string SettingsGetManifest = "xg";
    private const string SettingsSetManifest = "xs";
    private const string SettingsCurrentManifest = "xc";
    private const string SettingsChangedManifest = "xe2"; // "xe" was the per-topic event without the topic
    private const string AckManifest = "ta";
    private const string RejectedManifest = "tr";
    private const string AttachManifest = "sa";
    private const string AttachedManifest = "sA";
    private const string AttachedWithOptionsManifest = "sA2";
    private const string DetachManifest = "sd";
    private const string AddSubscriptionManifest = "ss";
    private const string AddSubscriptionWithOptionsManifest = "ss2";
    private const string RemoveSubscriptionManifest = "su";
    private const string CommitManifest = "sc";
    private const string DoneManifest = "sk";
    private const string SessionRejectedManifest = "sr";
    private const string TakenOverManifest = "st";
    private const string CheckExpiryManifest = "sx";
    private const string CheckedManifest = "sX";
    private const string SubscribedEventManifest = "eS";
    private const string SubscribedWithOptionsEventManifest = "eS2";
    private const string UnsubscribedEventManifest = "eU";
    private const string CommittedEventManifest = "eC";
    private const string SnapshotManifest = "eN";
    private const string SnapshotWithOptionsManifest = "eN2";
    private const string SnapshotWithAttachmentManifest = "eN3";
    private const string ConnectionAttachedEventManifest = "eA";
    private const string ConnectionDetachedEventManifest = "eD";
    private const string GetNodeStatusManifest = "nq";
    private const string NodeStatusManifest = "nS";
    private const string DrainNodeManifest = "nd";
    private const string DrainedManifest = "nD";

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        TopicCommands.Publish p => p.DeadlineUnixMs == 0 ? PublishManifest : PublishWithDeadlineManifest,
        TopicSettingsCommands.Get => SettingsGetManifest,
        TopicSettingsCommands.SetReadOnly => SettingsSetManifest,
        TopicSettingsCommands.Current => SettingsCurrentManifest,
        TopicSettingsEvents.ReadOnlyChanged => SettingsChangedManifest,
        TopicCommands.PublishAck => AckManifest,
        TopicCommands.PublishRejected => RejectedManifest,
        SessionCommands.Attach => AttachManifest,
        SessionCommands.Attached a => HasOptions(a.Topics) ? AttachedWithOptionsManifest : AttachedManifest,
        SessionCommands.Detach => DetachManifest,
        SessionCommands.AddSubscription s => HasOptions(s.Key, s.Headers) ? AddSubscriptionWithOptionsManifest : AddSubscriptionManifest,
        SessionCommands.RemoveSubscription => RemoveSubscriptionManifest,
        SessionCommands.Commit => CommitManifest,
        SessionCommands.Done => DoneManifest,
        SessionCommands.Rejected => SessionRejectedManifest,
        SessionCommands.TakenOver => TakenOverManifest,
        SessionCommands.CheckExpiry => CheckExpiryManifest,
        SessionCommands.Checked => CheckedManifest,
        SessionEvents.ConnectionAttached => ConnectionAttachedEventManifest,
        SessionEvents.ConnectionDetached => ConnectionDetachedEventManifest,
        SessionEvents.Subscribed e => HasOptions(e.Key, e.Headers) ? SubscribedWithOptionsEventManifest : SubscribedEventManifest,
        SessionEvents.Unsubscribed => UnsubscribedEventManifest,
        SessionEvents.Committed => CommittedEventManifest,
        SessionEvents.Snapshot { Attachment: not null } => SnapshotWithAttachmentManifest,
        SessionEvents.Snapshot e => HasOptions(e.Topics) ? SnapshotWithOptionsManifest : SnapshotManifest,
        NodeInfo.GetNodeStatus => GetNodeStatusManifest,
        NodeInfo.NodeStatus => NodeStatusManifest,
        NodeInfo.DrainNode => DrainNodeManifest,
        NodeInfo.Drained => DrainedManifest,
        _ => throw new ArgumentException($"{o.GetType()} is not serialized by {nameof(BrokerSerializer)}"),
    };

    public override byte[] ToBinary(object obj)
    {
        var w = new Writer();
        switch (obj)
        {
            case TopicCommands.Publish p:
                w.String(p.Topic); w.Bytes(p.Data); w.String(p.Key); w.String(p.ClientId); w.String(p.RequestId);
                if (p.DeadlineUnixMs != 0) w.Long(p.DeadlineUnixMs);
                break;
            case TopicCommands.PublishAck a:
                w.String(a.Topic); w.String(a.Pos); w.Bool(a.Duplicate);
                break;
            case TopicSettingsCommands.Get g:
                w.String(g.Topic);
                break;
            case TopicSettingsCommands.SetReadOnly set:
                w.String(set.Topic); w.Bool(set.ReadOnly);
                break;
            case TopicSettingsCommands.Current c:
                w.String(c.Topic); w.Bool(c.ReadOnly);
                break;
            case TopicSettingsEvents.ReadOnlyChanged e:
                w.String(e.Topic); w.Bool(e.ReadOnly);
                break;
            case TopicCommands.PublishRejected r:
                w.String(r.Topic); w.String(r.Code); w.String(r.Message);
                break;
            case SessionCommands.Attach a:
                w.String(a.SessionId); w.String(ActorPath(a.Connection));
                break;
            case SessionCommands.Attached a:
                w.String(a.SessionId); Topics(w, a.Topics);
                break;
            case SessionCommands.Detach d:
                w.String(d.SessionId); w.String(ActorPath(d.Connection));
                break;
            case SessionCommands.AddSubscription s:
                w.String(s.SessionId); w.String(s.Topic); w.String(s.Pos);
                if (HasOptions(s.Key, s.Headers)) Options(w, s.Key, s.Headers);
                break;
            case SessionCommands.RemoveSubscription r:
                w.String(r.SessionId); w.String(r.Topic);
                break;
            case SessionCommands.Commit c:
                w.String(c.SessionId); w.String(c.Topic); w.String(c.Pos);
                break;
            case SessionCommands.Done d:
                w.String(d.SessionId);
                break;
            case SessionCommands.Rejected r:
                w.String(r.SessionId); w.String(r.Code); w.String(r.Message);
                break;
            case SessionCommands.TakenOver t:
                w.String(t.SessionId);
                break;
            case SessionCommands.CheckExpiry x:
                w.String(x.SessionId);
                break;
            case SessionCommands.Checked x:
                w.String(x.SessionId);
                break;
            case SessionEvents.ConnectionAttached e:
                w.String(e.Endpoint); w.Long(e.AtUnixMs);
                break;
            case SessionEvents.ConnectionDetached e:
                w.Long(e.AtUnixMs);
                break;
            case SessionEvents.Snapshot { Attachment: { } attachment } e:
                // eN3: the topics always with their options, then the connection fact.
                TopicsWithOptions(w, e.Topics);
                w.String(attachment.Endpoint); w.Long(attachment.AtUnixMs);
                break;
            case SessionEvents.Subscribed e:
                w.String(e.Topic); w.String(e.Pos);
                if (HasOptions(e.Key, e.Headers)) Options(w, e.Key, e.Headers);
                break;
            case SessionEvents.Unsubscribed e:
                w.String(e.Topic);
                break;
            case SessionEvents.Committed e:
                w.String(e.Topic); w.String(e.Pos);
                break;
            case SessionEvents.Snapshot e:
                Topics(w, e.Topics);
                break;
            case NodeInfo.GetNodeStatus:
                break;
            case NodeInfo.NodeStatus n:
                w.String(n.Address); w.Int(n.Connections); w.Bool(n.Draining); w.Int(n.Topics.Count);
                foreach (var t in n.Topics)
                {
                    w.String(t.Topic); w.String(t.KafkaTopic); w.Int(t.Subscribers);
                }
                break;
            case NodeInfo.DrainNode d:
                w.Int(d.TimeoutMs);
                break;
            case NodeInfo.Drained d:
                w.String(d.Address); w.Int(d.Closed); w.Int(d.Remaining);
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
            PublishWithDeadlineManifest => new TopicCommands.Publish(r.String()!, r.Bytes()!, r.String(), r.String(), r.String(), r.Long()),
            SettingsGetManifest => new TopicSettingsCommands.Get(r.String()!),
            SettingsSetManifest => new TopicSettingsCommands.SetReadOnly(r.String()!, r.Bool()),
            SettingsCurrentManifest => new TopicSettingsCommands.Current(r.String()!, r.Bool()),
            SettingsChangedManifest => new TopicSettingsEvents.ReadOnlyChanged(r.String()!, r.Bool()),
            AckManifest => new TopicCommands.PublishAck(r.String()!, r.String()!, r.Bool()),
            RejectedManifest => new TopicCommands.PublishRejected(r.String()!, r.String()!, r.String()!),
            AttachManifest => new SessionCommands.Attach(r.String()!, ResolveActor(r.String()!)),
            AttachedManifest => new SessionCommands.Attached(r.String()!, Topics(ref r, withOptions: false)),
            AttachedWithOptionsManifest => new SessionCommands.Attached(r.String()!, Topics(ref r, withOptions: true)),
            DetachManifest => new SessionCommands.Detach(r.String()!, ResolveActor(r.String()!)),
            AddSubscriptionManifest => new SessionCommands.AddSubscription(r.String()!, r.String()!, r.String()!),
            AddSubscriptionWithOptionsManifest => new SessionCommands.AddSubscription(r.String()!, r.String()!, r.String()!, r.String(), r.Bool()),
            RemoveSubscriptionManifest => new SessionCommands.RemoveSubscription(r.String()!, r.String()!),
            CommitManifest => new SessionCommands.Commit(r.String()!, r.String()!, r.String()!),
            DoneManifest => new SessionCommands.Done(r.String()!),
            SessionRejectedManifest => new SessionCommands.Rejected(r.String()!, r.String()!, r.String()!),
            TakenOverManifest => new SessionCommands.TakenOver(r.String()!),
            CheckExpiryManifest => new SessionCommands.CheckExpiry(r.String()!),
            CheckedManifest => new SessionCommands.Checked(r.String()!),
            ConnectionAttachedEventManifest => new SessionEvents.ConnectionAttached(r.String()!, r.Long()),
            ConnectionDetachedEventManifest => new SessionEvents.ConnectionDetached(r.Long()),
            SnapshotWithAttachmentManifest => new SessionEvents.Snapshot(Topics(ref r, withOptions: true), new SessionAttachment(r.String(), r.Long())),
            SubscribedEventManifest => new SessionEvents.Subscribed(r.String()!, r.String()!),
            SubscribedWithOptionsEventManifest => new SessionEvents.Subscribed(r.String()!, r.String()!, r.String(), r.Bool()),
            UnsubscribedEventManifest => new SessionEvents.Unsubscribed(r.String()!),
            CommittedEventManifest => new SessionEvents.Committed(r.String()!, r.String()!),
            SnapshotManifest => new SessionEvents.Snapshot(Topics(ref r, withOptions: false)),
            SnapshotWithOptionsManifest => new SessionEvents.Snapshot(Topics(ref r, withOptions: true)),
            GetNodeStatusManifest => NodeInfo.GetNodeStatus.Instance,
            NodeStatusManifest => NodeStatus(ref r),
            DrainNodeManifest => new NodeInfo.DrainNode(r.Int()),
            DrainedManifest => new NodeInfo.Drained(r.String()!, r.Int(), r.Int()),
            _ => throw new SerializationException($"unknown manifest {manifest}"),
        };
    }

    private static string ActorPath(IActorRef actor) => Akka.Serialization.Serialization.SerializedActorPath(actor);

    private IActorRef ResolveActor(string path) => system.Provider.ResolveActorRef(path);

    /// <summary>Whether a subscription needs the "2" layout (a key filter or headers); else it is written as before they existed.</summary>
    private static bool HasOptions(string? key, bool headers) => key is not null || headers;

    private static bool HasOptions(IReadOnlyList<SessionTopic> topics)
    {
        foreach (var t in topics)
        {
            if (HasOptions(t.Key, t.Headers)) return true;
        }
        return false;
    }

    private static void Options(Writer w, string? key, bool headers)
    {
        w.String(key); w.Bool(headers);
    }

    /// <summary>Count, then per topic: topic, pos and, in the "2" layout (if any topic has options), key and headers.</summary>
    private static void Topics(Writer w, IReadOnlyList<SessionTopic> topics) => Topics(w, topics, HasOptions(topics));

    /// <summary>Topics in the "2" layout whether or not any has options (snapshots with a connection fact, <c>eN3</c>).</summary>
    private static void TopicsWithOptions(Writer w, IReadOnlyList<SessionTopic> topics) => Topics(w, topics, withOptions: true);

    private static void Topics(Writer w, IReadOnlyList<SessionTopic> topics, bool withOptions)
    {
        w.Int(topics.Count);
        foreach (var t in topics)
        {
            w.String(t.Topic); w.String(t.Pos);
            if (withOptions) Options(w, t.Key, t.Headers);
        }
    }

    private static NodeInfo.NodeStatus NodeStatus(ref Reader r)
    {
        var address = r.String()!;
        var connections = r.Int();
        var draining = r.Bool();
        var n = r.Int();
        if (n < 0 || n > 10_000_000) throw new SerializationException("bad topic count");
        var topics = new List<TopicSubscribers>(n);
        for (var i = 0; i < n; i++) topics.Add(new TopicSubscribers(r.String()!, r.String()!, r.Int()));
        return new NodeInfo.NodeStatus(address, connections, draining, topics);
    }

    private static List<SessionTopic> Topics(ref Reader r, bool withOptions)
    {
        var n = r.Int();
        if (n < 0 || n > 1_000_000) throw new SerializationException("bad topic count");
        var topics = new List<SessionTopic>(n);
        for (var i = 0; i < n; i++)
        {
            var topic = r.String()!;
            var pos = r.String()!;
            topics.Add(withOptions ? new SessionTopic(topic, pos, r.String(), r.Bool()) : new SessionTopic(topic, pos));
        }
        return topics;
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

        public void Int(int v) => BinaryPrimitives.WriteInt32LittleEndian(Take(4), v);

        public void Long(long v) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), v);

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

        public int Int() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

        public long Long() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

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
