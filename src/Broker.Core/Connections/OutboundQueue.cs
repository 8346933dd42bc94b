using Broker.Protocol;

namespace Broker.Core.Connections;

/// <summary>Why and how a connection is being closed.</summary>
public sealed record CloseRequest(int Code, string Reason);

/// <summary>Drains an <see cref="OutboundQueue"/>: woken when frames arrive and it is idle.</summary>
public interface IOutboundDrain
{
    /// <summary>Called (outside the queue's lock) when frames arrived and no drain is running: start one.</summary>
    void Wake();
}

/// <summary>
/// The one bounded outbound buffer of a connection: every frame for the client (replies, history,
/// live messages) passes through it, in the order it was queued, to the connection's single
/// writer. Its budget is <c>outbound-buffer-frames</c> frames and <c>outbound-buffer-bytes</c>
/// bytes, counted until a frame has been written to the socket.
/// <list type="bullet">
/// <item>Live messages from a node feed never wait: one that finds the budget spent closes the
/// connection with 1013 <c>slow_consumer</c> instead of stalling the feed for everybody else.</item>
/// <item>History frames (replay) wait for room, at most <c>replay-stall-timeout</c>, then close the
/// connection the same way.</item>
/// <item>Replies are always queued; the connection stops reading requests while the budget is spent
/// (<see cref="WaitForRoomAsync"/>), so a client that does not read its replies is slowed by TCP.</item>
/// </list>
/// The hand-off is a short lock per frame and one swap of the whole list per drain: the writer takes
/// everything queued at once and writes it with one flush. An idle queue holds two empty lists.
/// </summary>
public sealed class OutboundQueue
{
    private const int TrimCapacity = 1024;

    private readonly int _maxFrames;
    private readonly long _maxBytes;
    private readonly Lock _sync = new();
    private readonly TaskCompletionSource<CloseRequest> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IOutboundDrain? _drain;
    private List<byte[]> _pending = [];
    private int _frames;       // queued or being written
    private long _bytes;       // queued or being written
    private bool _draining;    // a drain runs or is scheduled
    private TaskCompletionSource? _room;
    private TaskCompletionSource? _drainStopped;
    private CloseRequest? _closing; // close once what is queued now has been written; nothing more is queued

    /// <param name="maxFrames">Most frames queued (and not yet written).</param>
    /// <param name="maxBytes">Most bytes queued (and not yet written).</param>
    public OutboundQueue(int maxFrames, long maxBytes)
    {
        _maxFrames = maxFrames;
        _maxBytes = maxBytes;
    }

    /// <summary>The writer that drains this queue (set once, before the first frame).</summary>
    public void AttachDrain(IOutboundDrain drain) => _drain = drain;

    /// <summary>Bytes queued and not yet written.</summary>
    public long QueuedBytes
    {
        get { lock (_sync) return _bytes; }
    }

    /// <summary>Frames queued and not yet written.</summary>
    public int QueuedFrames
    {
        get { lock (_sync) return _frames; }
    }

    /// <summary>Completes with the first close request.</summary>
    public Task<CloseRequest> Closed => _closed.Task;

    public CloseRequest? CloseRequested => _closed.Task.IsCompleted ? _closed.Task.Result : null;

    private bool HasRoom(int length) => _frames < _maxFrames && _bytes + length <= _maxBytes;

    /// <summary>Offers a live frame; a spent budget closes the connection as a slow consumer.</summary>
    public bool TryEnqueueLive(byte[] frame)
    {
        bool wake, full;
        lock (_sync)
        {
            if (_closed.Task.IsCompleted || _closing is not null) return false;
            full = !HasRoom(frame.Length);
            wake = !full && Add(frame);
        }
        if (full)
        {
            RequestClose(CloseCodes.TryAgainLater, "slow_consumer");
            return false;
        }
        if (wake) _drain?.Wake();
        return true;
    }

    /// <summary>Queues a reply (never refused while the connection is open; see <see cref="WaitForRoomAsync"/>).</summary>
    public bool EnqueueReply(byte[] frame)
    {
        bool wake;
        lock (_sync)
        {
            if (_closed.Task.IsCompleted || _closing is not null) return false;
            wake = Add(frame);
        }
        if (wake) _drain?.Wake();
        return true;
    }

    /// <summary>
    /// Queues a history frame, waiting for room at most <paramref name="stall"/>: a client that stops
    /// reading during a replay is closed as a slow consumer instead of holding a replay reader
    /// forever. Returns false once the connection is closing.
    /// </summary>
    public async ValueTask<bool> EnqueueHistoryAsync(byte[] frame, TimeSpan stall, CancellationToken ct)
    {
        var deadline = 0L;
        while (true)
        {
            Task room;
            bool wake;
            lock (_sync)
            {
                if (_closed.Task.IsCompleted || _closing is not null) return false;
                if (HasRoom(frame.Length) || _frames == 0)
                {
                    wake = Add(frame);
                    room = Task.CompletedTask;
                }
                else
                {
                    wake = false;
                    room = (_room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                }
            }
            if (room.IsCompleted)
            {
                if (wake) _drain?.Wake();
                return true;
            }
            if (deadline == 0) deadline = Environment.TickCount64 + (long)stall.TotalMilliseconds;
            var left = deadline - Environment.TickCount64;
            try
            {
                if (left <= 0) throw new TimeoutException();
                await room.WaitAsync(TimeSpan.FromMilliseconds(left), ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                RequestClose(CloseCodes.TryAgainLater, "slow_consumer");
                return false;
            }
        }
    }

    /// <summary>Completes when the budget has room again (at once when it has), or when the connection closes.</summary>
    public Task WaitForRoomAsync()
    {
        lock (_sync)
        {
            if (_closed.Task.IsCompleted || HasRoom(0)) return Task.CompletedTask;
            return (_room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    /// <summary>Adds under the lock; true when the drain must be woken.</summary>
    private bool Add(byte[] frame)
    {
        _pending.Add(frame);
        _frames++;
        _bytes += frame.Length;
        if (_draining) return false;
        _draining = true;
        return true;
    }

    /// <summary>
    /// The drain takes every queued frame: swaps <paramref name="batch"/> (empty) with the queued
    /// list. False when nothing is queued or the connection is closing: the drain then stops (and
    /// is woken again by the next frame).
    /// </summary>
    public bool TakeAll(ref List<byte[]> batch)
    {
        TaskCompletionSource? stopped = null;
        CloseRequest? closing = null;
        lock (_sync)
        {
            if (_pending.Count == 0 || _closed.Task.IsCompleted)
            {
                _draining = false;
                stopped = _drainStopped;
                _drainStopped = null;
                closing = _closing;
            }
            else
            {
                (batch, _pending) = (_pending, batch);
                return true;
            }
        }
        stopped?.TrySetResult();
        if (closing is not null) RequestClose(closing.Code, closing.Reason);
        return false;
    }

    /// <summary>The drain wrote <paramref name="batch"/> (or dropped it): frees its budget and clears it for reuse.</summary>
    public void Written(List<byte[]> batch)
    {
        long bytes = 0;
        foreach (var f in batch) bytes += f.Length;
        TaskCompletionSource? room = null;
        lock (_sync)
        {
            _frames -= batch.Count;
            _bytes -= bytes;
            if (_room is not null && HasRoom(0))
            {
                room = _room;
                _room = null;
            }
        }
        batch.Clear();
        if (batch.Capacity > TrimCapacity) batch.Capacity = TrimCapacity; // a burst does not pin a big array
        room?.TrySetResult();
    }

    /// <summary>Completes when no drain is writing any more (after a close request: the close frame may then be sent).</summary>
    public Task DrainStopped()
    {
        lock (_sync)
        {
            if (!_draining) return Task.CompletedTask;
            return (_drainStopped ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    /// <summary>Asks the connection to close; the first request wins. Nothing more is queued; what is queued is dropped.</summary>
    /// <summary>
    /// Closes once the frames queued so far have been written (e.g. an <c>error</c> that says why);
    /// nothing queued after this call is sent.
    /// </summary>
    public void RequestCloseAfterQueued(int code, string reason)
    {
        bool now;
        lock (_sync)
        {
            if (_closed.Task.IsCompleted || _closing is not null) return;
            now = !_draining; // nothing queued or being written
            if (!now) _closing = new CloseRequest(code, reason);
        }
        if (now) RequestClose(code, reason);
    }

    public void RequestClose(int code, string reason)
    {
        if (!_closed.TrySetResult(new CloseRequest(code, reason))) return;
        TaskCompletionSource? room;
        lock (_sync)
        {
            room = _room;
            _room = null;
        }
        room?.TrySetResult();
    }
}
