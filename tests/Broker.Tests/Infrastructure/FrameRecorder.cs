using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using System.Text.Json;
using Broker.Core.Log;
using Broker.Protocol;

namespace Broker.Tests.Infrastructure;

/// <summary>A <c>message</c> frame as recorded: its topic, its position and the <c>n</c> (and <c>p</c>, if any) of its data.</summary>
public sealed record RecordedFrame(string Topic, long[] Pos, long N, int P)
{
    /// <summary>The record's offset in a single-partition topic.</summary>
    public long Offset => Pos[0] - 1;
}

/// <summary>A feed subscriber (and history writer) that records the frames it is given and lets tests wait for a count.</summary>
public sealed class FrameRecorder : IFeedSubscriber
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly Lock _gate = new();
    private readonly List<RecordedFrame> _frames = [];
    private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
    private int _calls;

    public Func<int, bool> Accept { get; set; } = _ => true;

    public int Calls => Volatile.Read(ref _calls);

    private readonly TaskCompletionSource _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _lostCalls;

    /// <summary>Completes when the feed says records this subscriber did not receive are gone.</summary>
    public Task LostTask => _lost.Task;

    public int LostCalls => Volatile.Read(ref _lostCalls);

    public void Lost()
    {
        Interlocked.Increment(ref _lostCalls);
        _lost.TrySetResult();
    }

    public bool TryDeliver(byte[] frame)
    {
        if (!Accept(Interlocked.Increment(ref _calls))) return false;
        Record(frame);
        return true;
    }

    public ValueTask WriteHistory(byte[] frame)
    {
        Record(frame);
        return ValueTask.CompletedTask;
    }

    public List<RecordedFrame> Frames
    {
        get { lock (_gate) return [.. _frames]; }
    }

    public List<long> Offsets => Frames.ConvertAll(f => f.Offset);

    public int Count
    {
        get { lock (_gate) return _frames.Count; }
    }

    public Task WaitForCount(int count)
    {
        lock (_gate)
        {
            if (_frames.Count >= count) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, done));
            return done.Task.WaitAsync(Timeout).ContinueWith(t =>
            {
                if (t.IsFaulted) Assert.Fail($"received {Count} of {count} frames within {Timeout}");
            }, TaskScheduler.Default);
        }
    }

    private void Record(byte[] frame)
    {
        using var doc = JsonDocument.Parse(frame);
        var root = doc.RootElement;
        Assert.Equal("message", root.GetProperty("type").GetString());
        Assert.True(Position.TryParse(root.GetProperty("pos").GetString(), out var pos));
        var data = root.GetProperty("data");
        var parsed = new RecordedFrame(root.GetProperty("topic").GetString()!, pos.ToArray(), data.GetProperty("n").GetInt64(),
            data.TryGetProperty("p", out var p) ? p.GetInt32() : -1);
        lock (_gate)
        {
            _frames.Add(parsed);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_frames.Count < _waiters[i].Count) continue;
                _waiters[i].Done.TrySetResult();
                _waiters.RemoveAt(i);
            }
        }
    }
}
