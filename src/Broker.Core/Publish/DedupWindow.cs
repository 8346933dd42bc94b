namespace Broker.Core.Publish;

/// <summary>
/// The publishes a topic has written recently, by (client, request id) → position, so that a
/// retried publish is answered with the original ack instead of being written twice. Bounded by
/// count; the oldest entries are forgotten first.
/// </summary>
internal sealed class DedupWindow(int capacity)
{
    private readonly Dictionary<(string Client, string Id), string> _written = new();
    private readonly Queue<(string Client, string Id)> _order = new();

    public int Count => _written.Count;

    public bool TryGet(string client, string id, out string pos) => _written.TryGetValue((client, id), out pos!);

    public void Add(string client, string id, string pos)
    {
        if (capacity <= 0) return;
        var key = (client, id);
        if (!_written.TryAdd(key, pos)) return;
        _order.Enqueue(key);
        while (_order.Count > capacity) _written.Remove(_order.Dequeue());
    }
}
