namespace Broker.Soak.Clients;

/// <summary>
/// What one subscriber received on one topic during one life of its client object, and where that
/// life had to start: the checker requires every record of the log from <see cref="StartAfter"/>
/// on (to the end of the log when <see cref="Complete"/>, else to the last one delivered), each
/// once, in the log's order per partition.
/// </summary>
public sealed class SubscriberStream(string subscriber, int incarnation, string topic, string? startAfter, bool strictStart)
{
    private readonly List<MsgId> _delivered = [];

    public string Subscriber { get; } = subscriber;
    public int Incarnation { get; } = incarnation;
    public string Topic { get; } = topic;

    /// <summary>The position this life resumed after (a <c>pos</c>: <c>since</c> or the session's last commit); null: the log's start.</summary>
    public string? StartAfter { get; } = startAfter;

    /// <summary>
    /// True when nothing at or before <see cref="StartAfter"/> may be delivered again (a <c>since</c>
    /// resume, or a session whose last commit is known to have reached the broker).
    /// </summary>
    public bool StrictStart { get; } = strictStart;

    /// <summary>True for a life that lasted to the end of the run: it must have everything up to the log's end.</summary>
    public bool Complete { get; set; }

    /// <summary>Messages marked as the first after a gap the broker reported (recovered: false).</summary>
    public int Gaps { get; private set; }

    public string? LastPos { get; private set; }

    public void Add(MsgId id, string pos, bool afterGap)
    {
        lock (_delivered)
        {
            _delivered.Add(id);
            LastPos = pos;
            if (afterGap) Gaps++;
        }
    }

    /// <summary>The broker said it could not resume without loss (recovered: false).</summary>
    public void MarkGap()
    {
        lock (_delivered) Gaps++;
    }

    public List<MsgId> Delivered
    {
        get { lock (_delivered) return [.. _delivered]; }
    }

    public int Count
    {
        get { lock (_delivered) return _delivered.Count; }
    }

    /// <summary>Whether each of <paramref name="ids"/> was delivered (searched from the end: they are the log's last records).</summary>
    public bool HasAll(IReadOnlyCollection<MsgId> ids)
    {
        lock (_delivered)
        {
            var missing = new HashSet<MsgId>(ids);
            for (var i = _delivered.Count - 1; i >= 0 && missing.Count > 0; i--) missing.Remove(_delivered[i]);
            return missing.Count == 0;
        }
    }
}
