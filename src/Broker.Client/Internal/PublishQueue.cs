namespace Broker.Client.Internal;

/// <summary>A publish waiting for its ack: the encoded frame is kept to resend it unchanged (same id).</summary>
internal sealed class PendingPublish(string id, string topic, byte[] frame)
{
    private readonly TaskCompletionSource<Ack> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Id { get; } = id;
    public string Topic { get; } = topic;
    public byte[] Frame { get; } = frame;
    public Task<Ack> Task => _done.Task;

    /// <summary>The connection it was last sent on (0: not sent yet).</summary>
    public long SentOn { get; set; }

    /// <summary>Transient refusals in a row (unavailable, overloaded, rate_limited): paces its resends.</summary>
    public int Refusals { get; set; }

    public CancellationTokenRegistration Cancellation { get; set; }

    public bool Complete(Ack ack)
    {
        Cancellation.Dispose();
        return _done.TrySetResult(ack);
    }

    public bool Fail(Exception e)
    {
        Cancellation.Dispose();
        return _done.TrySetException(e);
    }

    public bool Cancel(CancellationToken ct) => _done.TrySetCanceled(ct);
}

/// <summary>
/// The publishes of a client that wait for their ack, in the order they were made (resent in that
/// order after a reconnect), bounded. Not thread-safe: the client calls it under its lock.
/// </summary>
internal sealed class PublishQueue(int capacity)
{
    private readonly LinkedList<PendingPublish> _order = new();
    private readonly Dictionary<string, LinkedListNode<PendingPublish>> _byId = new(StringComparer.Ordinal);

    public int Count => _byId.Count;

    public int Capacity => capacity;

    /// <summary>Adds a publish; throws <see cref="PublishQueueFullException"/> when <see cref="Capacity"/> are waiting.</summary>
    public void Add(PendingPublish p)
    {
        if (_byId.Count >= capacity) throw new PublishQueueFullException(capacity);
        _byId.Add(p.Id, _order.AddLast(p));
    }

    public bool TryGet(string id, out PendingPublish p)
    {
        if (_byId.TryGetValue(id, out var node))
        {
            p = node.Value;
            return true;
        }
        p = null!;
        return false;
    }

    /// <summary>Removes and returns the publish with this id (its ack or final error arrived, or it was cancelled).</summary>
    public PendingPublish? Remove(string id)
    {
        if (!_byId.Remove(id, out var node)) return null;
        _order.Remove(node);
        return node.Value;
    }

    /// <summary>Every waiting publish, oldest first.</summary>
    public IEnumerable<PendingPublish> InOrder => _order;

    /// <summary>Removes and returns everything (the client stopped).</summary>
    public List<PendingPublish> TakeAll()
    {
        var all = _order.ToList();
        _order.Clear();
        _byId.Clear();
        return all;
    }
}
