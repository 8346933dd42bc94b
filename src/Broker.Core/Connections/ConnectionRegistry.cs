using System.Collections.Concurrent;

namespace Broker.Core.Connections;

/// <summary>The live connections of this node: counted for operators, closed together on shutdown or drain.</summary>
public sealed class ConnectionRegistry
{
    private readonly ConcurrentDictionary<long, OutboundQueue> _open = new();
    private readonly TaskCompletionSource _empty = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _next;
    private volatile CloseRequest? _draining;

    public int Count => _open.Count;

    /// <summary>Set once the node stops accepting connections (shutdown or drain).</summary>
    public bool IsDraining => _draining is not null;

    internal long Add(OutboundQueue outbound)
    {
        var id = Interlocked.Increment(ref _next);
        _open[id] = outbound;
        if (_draining is { } d) outbound.RequestClose(d.Code, d.Reason);
        return id;
    }

    internal void Remove(long id)
    {
        _open.TryRemove(id, out _);
        if (_draining is not null && _open.IsEmpty) _empty.TrySetResult();
    }

    /// <summary>Stops accepting connections and closes every open one with <paramref name="code"/>; completes when all are gone or the timeout passed.</summary>
    public Task DrainAsync(int code, string reason, TimeSpan timeout)
    {
        _draining ??= new CloseRequest(code, reason);
        foreach (var o in _open.Values) o.RequestClose(code, reason);
        if (_open.IsEmpty) _empty.TrySetResult();
        return _empty.Task.WaitAsync(timeout).ContinueWith(static _ => { }, TaskScheduler.Default);
    }
}
