using System.Diagnostics;
using System.Numerics;

namespace Broker.Bench;

/// <summary>
/// Latencies as a log-linear histogram of microseconds (exact below 64 µs, then 32 buckets per
/// power of two: ≤ 3% error), so that millions of samples cost no allocation and no sort. One
/// writer (a receive loop); read after the writers stopped.
/// </summary>
public sealed class Histogram
{
    private const int Buckets = 64 + 40 * 32;
    private static readonly long TicksPerMicro = Math.Max(1, Stopwatch.Frequency / 1_000_000);
    private readonly int[] _counts = new int[Buckets];
    public long Count { get; private set; }
    public long MaxMicros { get; private set; }

    public void Add(long ticks)
    {
        var us = Math.Max(0, ticks / TicksPerMicro);
        _counts[Math.Min(Index(us), Buckets - 1)]++;
        Count++;
        if (us > MaxMicros) MaxMicros = us;
    }

    private static int Index(long us)
    {
        if (us < 64) return (int)us;
        var shift = 63 - BitOperations.LeadingZeroCount((ulong)us) - 5; // ≥ 1; us >> shift is in [32, 63]
        return 64 + (shift - 1) * 32 + (int)(us >> shift) - 32;
    }

    /// <summary>The middle of a bucket, in microseconds.</summary>
    private static double Middle(int index)
    {
        if (index < 64) return index;
        var shift = (index - 64) / 32 + 1;
        var mantissa = (index - 64) % 32 + 32;
        return ((long)mantissa << shift) + (1L << shift) / 2.0;
    }

    /// <summary>Merged percentiles in milliseconds.</summary>
    public static LatencySummary Summarize(IEnumerable<Histogram> parts)
    {
        var counts = new long[Buckets];
        long total = 0, max = 0;
        foreach (var p in parts)
        {
            for (var i = 0; i < Buckets; i++) counts[i] += p._counts[i];
            total += p.Count;
            max = Math.Max(max, p.MaxMicros);
        }
        if (total == 0) return new LatencySummary(0, 0, 0, 0, 0);
        double At(double q)
        {
            var rank = (long)Math.Ceiling(q * total);
            long seen = 0;
            for (var i = 0; i < Buckets; i++)
                if ((seen += counts[i]) >= rank) return Math.Min(Middle(i), max) / 1000.0;
            return max / 1000.0;
        }
        return new LatencySummary(total, At(0.50), At(0.95), At(0.99), max / 1000.0);
    }
}

public readonly record struct LatencySummary(long Count, double P50, double P95, double P99, double Max);

/// <summary>What every publish carries in <c>data</c>: padding to a size, or a realistic JSON body.</summary>
public readonly record struct Payload(int Size, bool Json);

/// <summary>
/// A connection that publishes runs of messages with at most <c>window</c> unanswered (targets
/// with acks), optionally paced to a rate, round robin over its topics: publish <c>s</c> of a run
/// goes to <c>topics[s % topics.Length]</c>, with <c>data</c> = <c>{"t":send timestamp,"s":s,"r":run,…}</c>
/// and, with <c>keys</c> K &gt; 0, the key <c>k{s % K}</c>.
/// </summary>
public sealed class Publisher : IFrameHandler
{
    private readonly IBenchClient _client;
    private readonly string[] _topics;
    private readonly Payload _payload;
    private readonly int _keys;
    private readonly SemaphoreSlim _window;
    private readonly byte[] _data = new byte[1024];
    // The current run's send times by request id - Base. Request ids never repeat on a connection
    // (the broker answers a reused id with the original ack and does not write it again).
    private volatile Sends _sends = new(0, []);
    private int _answered, _target;
    private TaskCompletionSource _allAnswered = new();
    private TaskCompletionSource _pong = new();

    public Histogram AckLatency { get; private set; } = new();
    public int Acked { get; private set; }
    public int Sent { get; private set; }
    /// <summary>Seconds from the first send to the last send of the last run.</summary>
    public double SendSeconds { get; private set; }
    public Dictionary<string, int> Errors { get; } = [];
    public Task<string?> Ended => _client.Ended;
    public bool AcksPublishes => _client.AcksPublishes;
    public IBenchClient Client => _client;

    private Publisher(IBenchClient client, string[] topics, Payload payload, int window, int keys)
    {
        _client = client;
        _topics = topics;
        _payload = payload;
        _keys = keys;
        _window = new SemaphoreSlim(window, window);
        client.Start(this);
    }

    public static async Task<Publisher> OpenAsync(Endpoint ep, string[] topics, Payload payload, int window, int keys, CancellationToken ct) =>
        new(await ep.OpenAsync(ct), topics, payload, window, keys);

    public void OnMessage(in Delivery d) { }

    public void OnReply(FrameType type, long id, string? code)
    {
        if (type == FrameType.Pong) { _pong.TrySetResult(); return; }
        if (type is not (FrameType.Ack or FrameType.Error)) return;
        var sends = _sends;
        if (id < 0 || id >= sends.Base + sends.At.Length) return; // never sent
        _window.Release(); // a late answer of an earlier run frees its window slot too
        var i = id - sends.Base;
        if (i < 0) return; // not this run's
        if (type == FrameType.Ack)
        {
            AckLatency.Add(Stopwatch.GetTimestamp() - sends.At[i]);
            Acked++;
        }
        else
        {
            lock (Errors) Errors[code ?? "?"] = Errors.GetValueOrDefault(code ?? "?") + 1;
        }
        if (Interlocked.Increment(ref _answered) == Volatile.Read(ref _target)) _allAnswered.TrySetResult();
    }

    /// <summary>
    /// Publishes <paramref name="count"/> messages of run <paramref name="run"/> (at <paramref name="rate"/>
    /// per second when &gt; 0; no more sends after <paramref name="maxSend"/>, also while waiting for
    /// the window) and waits until every one is answered (targets with acks) or flushed with a ping
    /// (NATS). Returns false when the connection ended first. A run starts only after the previous
    /// run's sending stopped (a caller that gave up waiting for answers may start the next run).
    /// </summary>
    public async Task<bool> RunAsync(long run, int count, double rate, TimeSpan maxSend, CancellationToken ct)
    {
        await _sending.WaitAsync(ct);
        var sends = _sends = new Sends(_sends.Base + _sends.At.Length, new long[count]);
        _answered = 0;
        _target = int.MaxValue;
        _allAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        AckLatency = new Histogram();
        Acked = Sent = 0;
        var sending = _sending = SendAll(sends, run, count, rate, maxSend, ct);
        await sending;
        if (_client.AcksPublishes)
        {
            Volatile.Write(ref _target, Sent);
            if (Volatile.Read(ref _answered) >= Sent) _allAnswered.TrySetResult();
            await Task.WhenAny(_allAnswered.Task, _client.Ended).WaitAsync(ct);
            return _allAnswered.Task.IsCompleted;
        }
        await _client.PingAsync(0, ct);
        await Task.WhenAny(_pong.Task, _client.Ended).WaitAsync(ct);
        return _pong.Task.IsCompleted;
    }

    private Task _sending = Task.CompletedTask;

    private async Task SendAll(Sends sends, long run, int count, double rate, TimeSpan maxSend, CancellationToken ct)
    {
        var acks = _client.AcksPublishes;
        var start = Stopwatch.GetTimestamp();
        var stopAt = start + (long)(maxSend.TotalSeconds * Stopwatch.Frequency);
        try
        {
            for (var i = 0; i < count; i++)
            {
                if (acks)
                {
                    var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), stopAt);
                    if (left <= TimeSpan.Zero || !await _window.WaitAsync(left, ct)) break;
                }
                if (rate > 0)
                {
                    var due = start + (long)(i * Stopwatch.Frequency / rate);
                    var ahead = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                    if (ahead > TimeSpan.Zero) await Task.Delay(ahead, ct);
                }
                var now = Stopwatch.GetTimestamp();
                if (now > stopAt)
                {
                    if (acks) _window.Release();
                    break;
                }
                sends.At[i] = now;
                var len = Data.Write(_data, now, i, run, _payload.Size, _payload.Json);
                await _client.PublishAsync(sends.Base + i, _topics[i % _topics.Length], _data.AsMemory(0, len), _keys > 0 ? i % _keys : -1, ct);
                Sent++;
            }
        }
        finally
        {
            SendSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
    }

    public Task CloseAsync() => _client.CloseAsync();

    private sealed record Sends(long Base, long[] At);
}

/// <summary>
/// A connection subscribed to one or more topics. For each run it expects the sequence numbers of
/// one publisher that are <c>offset</c> modulo <c>stride</c> (stride 1: all of them): it counts what
/// arrived, what is missing, duplicated or out of order. Messages of other runs (a previous step
/// still draining) are counted as stale and otherwise ignored. With <c>keys</c> K &gt; 0 only the
/// order within a key counts (a multi-partition topic orders per key).
/// </summary>
public sealed class Subscriber : IFrameHandler
{
    private readonly IBenchClient _client;
    private readonly int _keys;
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _subscribedCount, _subscribeTarget = int.MaxValue;
    private SemaphoreSlim? _subscribeWindow;
    private volatile RunState _run = new(-1, 0, 1, 0, 0);

    public Task<string?> Ended => _client.Ended;
    public IBenchClient Client => _client;
    public string? Error { get; private set; }
    public Task Subscribed => _subscribed.Task;
    /// <summary>Messages of another run than the current one.</summary>
    public long Stale { get; private set; }
    /// <summary>Stopwatch timestamp of the last message received (any run).</summary>
    public long LastReceivedAt { get; private set; }
    public RunState Run => _run;

    private Subscriber(IBenchClient client, int keys)
    {
        _client = client;
        _keys = keys;
        client.Start(this);
    }

    public static async Task<Subscriber> OpenAsync(Endpoint ep, int keys, CancellationToken ct) => new(await ep.OpenAsync(ct), keys);

    /// <summary>Subscribes to every topic with at most <paramref name="window"/> unanswered; <see cref="Subscribed"/> completes when all are confirmed.</summary>
    public async Task SubscribeAsync(IReadOnlyList<string> topics, int last, int window, CancellationToken ct)
    {
        _subscribeWindow = new SemaphoreSlim(window, window);
        Volatile.Write(ref _subscribeTarget, topics.Count);
        for (var i = 0; i < topics.Count; i++)
        {
            await _subscribeWindow.WaitAsync(ct);
            if (_subscribed.Task.IsFaulted) break;
            await _client.SubscribeAsync(i, topics[i], last, ct);
        }
        if (Volatile.Read(ref _subscribedCount) >= topics.Count) _subscribed.TrySetResult();
    }

    /// <summary>Starts a new run: expect <paramref name="expected"/> messages (sequence numbers offset, offset+stride, …).</summary>
    public void Expect(long run, int expected, int stride = 1, int offset = 0) => _run = new RunState(run, expected, stride, offset, _keys);

    public void OnReply(FrameType type, long id, string? code)
    {
        switch (type)
        {
            case FrameType.Subscribed:
                _subscribeWindow?.Release();
                if (Interlocked.Increment(ref _subscribedCount) >= Volatile.Read(ref _subscribeTarget)) _subscribed.TrySetResult();
                break;
            case FrameType.Error:
                Error ??= code;
                _subscribed.TrySetException(new InvalidOperationException($"subscribe failed: {code}"));
                _subscribeWindow?.Release();
                _run.Fail();
                break;
        }
    }

    /// <summary>Messages received, of any run.</summary>
    public long Messages { get; private set; }

    public void OnMessage(in Delivery d)
    {
        var now = Stopwatch.GetTimestamp();
        LastReceivedAt = now;
        Messages++;
        var run = _run;
        if (d.Run != run.Id) { Stale++; return; }
        run.Add(d, now);
    }

    public Task CloseAsync() => _client.CloseAsync();

    public sealed class RunState(long id, int expected, int stride, int offset, int keys)
    {
        private readonly bool[] _seen = new bool[expected];
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        /// <summary>With keys: the highest sequence number seen per key (-1: none yet).</summary>
        private readonly long[]? _maxSeqOfKey = keys > 0 ? Enumerable.Repeat(-1L, keys).ToArray() : null;
        private long _maxSeq = -1;

        public long Id => id;
        public Histogram Latency { get; } = new();
        public int Expected => expected;
        public int Received { get; private set; }
        public int Distinct { get; private set; }
        public int OutOfOrder { get; private set; }
        /// <summary>Sequence numbers that do not belong to this subscriber (another topic's) or out of range.</summary>
        public int Foreign { get; private set; }
        /// <summary>With keys: messages whose key is not <c>k{s % K}</c>.</summary>
        public int WrongKey { get; private set; }
        /// <summary>Stopwatch timestamp of the message that completed the set (0 until then).</summary>
        public long DoneAt { get; private set; }
        public Task Done => _done.Task;
        public int Missing => expected - Distinct;
        public int Duplicates => Received - Distinct - Foreign;

        internal void Fail() => _done.TrySetResult(); // nothing more will come: do not wait for it (DoneAt stays 0)

        /// <summary>Stopwatch timestamp of this run's last message so far (0: none).</summary>
        public long LastAt { get; private set; }

        internal void Add(in Delivery d, long now)
        {
            Received++;
            LastAt = now;
            Latency.Add(now - d.SentAt);
            var rel = d.Seq - offset;
            if (rel < 0 || rel % stride != 0 || rel / stride >= expected) { Foreign++; return; }
            var local = (int)(rel / stride);
            if (_maxSeqOfKey is null)
            {
                if (d.Seq < _maxSeq) OutOfOrder++;
                _maxSeq = Math.Max(_maxSeq, d.Seq);
            }
            else
            {
                var k = (int)(d.Seq % keys);
                if (d.Key != k) WrongKey++;
                if (d.Seq < _maxSeqOfKey[k]) OutOfOrder++;
                if (d.Seq > _maxSeqOfKey[k]) _maxSeqOfKey[k] = d.Seq;
            }
            if (_seen[local]) return;
            _seen[local] = true;
            if (++Distinct == expected)
            {
                DoneAt = now;
                _done.TrySetResult();
            }
        }
    }
}
