using System.Diagnostics;
using System.Text;

namespace Broker.Bench;

/// <summary>Latency samples in Stopwatch ticks, added from one thread (a receive loop).</summary>
public sealed class Latencies
{
    private readonly List<long> _ticks = [];

    public void Add(long ticks) => _ticks.Add(ticks);

    /// <summary>Merged percentiles in milliseconds; read only after the writers stopped.</summary>
    public static LatencySummary Summarize(IEnumerable<Latencies> parts)
    {
        var all = parts.SelectMany(p => p._ticks).ToArray();
        Array.Sort(all);
        if (all.Length == 0) return new LatencySummary(0, 0, 0, 0, 0);
        double At(double q) => all[Math.Clamp((int)Math.Ceiling(q * all.Length) - 1, 0, all.Length - 1)] * 1000.0 / Stopwatch.Frequency;
        return new LatencySummary(all.Length, At(0.50), At(0.95), At(0.99), At(1.0));
    }
}

public readonly record struct LatencySummary(int Count, double P50, double P95, double P99, double Max);

/// <summary>
/// A connection that publishes <c>count</c> messages to one topic with at most <c>window</c>
/// unanswered, optionally paced to a rate. <c>data</c> is <c>{"t":send timestamp,"s":seq,"p":padding}</c>;
/// with <c>keys</c> K &gt; 0, publish <c>s</c> carries the key <c>k{s % K}</c>.
/// </summary>
public sealed class Publisher
{
    private readonly Conn _conn;
    private readonly string _topic;
    private readonly string _pad;
    private readonly int _keys;
    private readonly long[] _sentAt;
    private readonly SemaphoreSlim _window;
    private readonly TaskCompletionSource _allAnswered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _answered;

    public Latencies AckLatency { get; } = new();
    public int Acked { get; private set; }
    public Dictionary<string, int> Errors { get; } = [];
    public Task<string?> Ended => _conn.Ended;

    private Publisher(Conn conn, string topic, int size, int count, int window, int keys)
    {
        _conn = conn;
        _topic = topic;
        _keys = keys;
        _pad = new string('x', Math.Max(0, size - 40)); // the rest of data is ~40 bytes
        _sentAt = new long[count];
        _window = new SemaphoreSlim(window, window);
        conn.Start(OnFrame);
    }

    public static async Task<Publisher> OpenAsync(Uri uri, string topic, int size, int count, int window, int keys, CancellationToken ct) =>
        new(await Conn.OpenAsync(uri, ct), topic, size, count, window, keys);

    private void OnFrame(Frame f)
    {
        if (f.Id < 0 || f.Id >= _sentAt.Length) return;
        if (f.Type == FrameType.Ack)
        {
            AckLatency.Add(Stopwatch.GetTimestamp() - _sentAt[f.Id]);
            Acked++;
        }
        else if (f.Type == FrameType.Error)
        {
            lock (Errors) Errors[f.Code ?? "?"] = Errors.GetValueOrDefault(f.Code ?? "?") + 1;
        }
        else return;
        _window.Release();
        if (++_answered == _sentAt.Length) _allAnswered.TrySetResult();
    }

    /// <summary>Sends every message (at <paramref name="rate"/> per second when &gt; 0) and waits for all answers.</summary>
    public async Task RunAsync(double rate, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < _sentAt.Length; i++)
        {
            await _window.WaitAsync(ct);
            if (rate > 0)
            {
                var due = start + (long)(i * Stopwatch.Frequency / rate);
                var ahead = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (ahead > TimeSpan.Zero) await Task.Delay(ahead, ct);
            }
            var now = Stopwatch.GetTimestamp();
            _sentAt[i] = now;
            var frame = Encoding.UTF8.GetBytes(_keys == 0
                ? $$$"""{"type":"publish","id":"{{{i}}}","topic":"{{{_topic}}}","data":{"t":{{{now}}},"s":{{{i}}},"p":"{{{_pad}}}"}}"""
                : $$$"""{"type":"publish","id":"{{{i}}}","topic":"{{{_topic}}}","key":"k{{{i % _keys}}}","data":{"t":{{{now}}},"s":{{{i}}},"p":"{{{_pad}}}"}}""");
            await _conn.SendAsync(frame, ct);
        }
        await Task.WhenAny(_allAnswered.Task, _conn.Ended).WaitAsync(ct);
    }

    public Task CloseAsync() => _conn.CloseAsync();
}

/// <summary>
/// A connection subscribed to one topic, expecting the sequence numbers 0..expected-1 of one
/// publisher: it counts what arrived, what is missing, duplicated or out of order. Missing and
/// duplicated are counted over all sequence numbers. Without keys, a sequence number lower than the
/// highest seen so far is out of order; with <c>keys</c> K &gt; 0 (sequence number s has key
/// <c>k{s % K}</c>) only the order within a key counts, since a multi-partition topic orders per key
/// only, and a message whose <c>key</c> is not <c>k{s % K}</c> counts as a wrong key.
/// </summary>
public sealed class Subscriber
{
    private readonly Conn _conn;
    private readonly bool[] _seen;
    private readonly int _keys;
    /// <summary>With keys: the highest sequence number seen per key number (-1: none yet); else null.</summary>
    private readonly long[]? _maxSeqOfKey;
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _maxSeq = -1;

    public Latencies Latency { get; } = new();
    public int Received { get; private set; }
    public int Distinct { get; private set; }
    public int OutOfOrder { get; private set; }
    /// <summary>With keys: messages whose <c>key</c> is not <c>k{s % K}</c> (missing or another one).</summary>
    public int WrongKey { get; private set; }
    public string? Error { get; private set; }
    /// <summary>Stopwatch timestamp of the frame that completed the set (0 until then).</summary>
    public long DoneAt { get; private set; }
    public Task Subscribed => _subscribed.Task;
    public Task Done => _done.Task;
    public Task<string?> Ended => _conn.Ended;
    public int Missing => _seen.Length - Distinct;
    public int Duplicates => Received - Distinct;

    private Subscriber(Conn conn, int expected, int keys)
    {
        _conn = conn;
        _seen = new bool[expected];
        _keys = keys;
        if (keys > 0)
        {
            // s < expected, so s % K < min(K, expected).
            _maxSeqOfKey = new long[Math.Min(keys, expected)];
            Array.Fill(_maxSeqOfKey, -1L);
        }
        conn.Start(OnFrame);
    }

    public static async Task<Subscriber> OpenAsync(Uri uri, int expected, int keys, CancellationToken ct) =>
        new(await Conn.OpenAsync(uri, ct), expected, keys);

    public ValueTask SubscribeAsync(string topic, string from, CancellationToken ct) =>
        _conn.SendAsync(Encoding.UTF8.GetBytes($$"""{"type":"subscribe","id":"0","topic":"{{topic}}","from":"{{from}}"}"""), ct);

    private void OnFrame(Frame f)
    {
        switch (f.Type)
        {
            case FrameType.Subscribed:
                _subscribed.TrySetResult();
                break;
            case FrameType.Error:
                Error ??= f.Code;
                _subscribed.TrySetException(new InvalidOperationException($"subscribe failed: {f.Code}"));
                _done.TrySetResult(); // nothing more will come: do not wait for it (DoneAt stays 0)
                break;
            case FrameType.Message:
                var now = Stopwatch.GetTimestamp();
                Latency.Add(now - f.SentAt);
                Received++;
                if (f.Seq < 0 || f.Seq >= _seen.Length) break;
                if (_maxSeqOfKey is null)
                {
                    if (f.Seq < _maxSeq) OutOfOrder++;
                    _maxSeq = Math.Max(_maxSeq, f.Seq);
                }
                else
                {
                    var k = (int)(f.Seq % _keys);
                    if (f.Key != k) WrongKey++;
                    if (f.Seq < _maxSeqOfKey[k]) OutOfOrder++;
                    if (f.Seq > _maxSeqOfKey[k]) _maxSeqOfKey[k] = f.Seq;
                }
                if (_seen[f.Seq]) break;
                _seen[f.Seq] = true;
                if (++Distinct == _seen.Length)
                {
                    DoneAt = now;
                    _done.TrySetResult();
                }
                break;
        }
    }

    public Task CloseAsync() => _conn.CloseAsync();
}
