namespace Broker.Soak.Clients;

/// <summary>A publish the soak made and what it was told.</summary>
public sealed class PublishRecord(string topic, MsgId id, double sentAt)
{
    public string Topic { get; } = topic;
    public MsgId Id { get; } = id;
    public double SentAt { get; } = sentAt;
    public double? AckAt { get; set; }
    public string? AckPos { get; set; }
    /// <summary>A final refusal (not transient: the client library retries those by itself).</summary>
    public string? Error { get; set; }
}

/// <summary>
/// A publisher's publishes, in the order it made them, and the time of every ack: written by the
/// publisher, read meanwhile by the fault loop (recovery, outages) and at the end by the checker.
/// </summary>
public sealed class PublishBook
{
    private readonly Lock _gate = new();
    private readonly List<PublishRecord> _records = [];
    private readonly List<double> _ackTimes = [];

    public List<PublishRecord> Records
    {
        get { lock (_gate) return [.. _records]; }
    }

    /// <summary>Times (soak clock) of every ack, in the order they arrived.</summary>
    public List<double> AckTimes
    {
        get { lock (_gate) return [.. _ackTimes]; }
    }

    public int Acked
    {
        get { lock (_gate) return _ackTimes.Count; }
    }

    /// <summary>When the last ack arrived (soak clock), or -1.</summary>
    public double LastAckAt
    {
        get { lock (_gate) return _ackTimes.Count > 0 ? _ackTimes[^1] : -1; }
    }

    /// <summary>The publish number <paramref name="seq"/> (the publisher's sequence numbers count from 0).</summary>
    public PublishRecord this[long seq]
    {
        get { lock (_gate) return _records[(int)seq]; }
    }

    public PublishRecord Add(string topic, MsgId id)
    {
        var record = new PublishRecord(topic, id, Clock.Now);
        lock (_gate) _records.Add(record);
        return record;
    }

    public void Ack(PublishRecord record, double at, string? pos)
    {
        lock (_gate)
        {
            record.AckAt = at;
            record.AckPos = pos;
            _ackTimes.Add(at);
        }
    }

    public void Refused(PublishRecord record, string error)
    {
        lock (_gate) record.Error = error;
    }
}
