using Broker.Core.Log;
using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using System.Collections.Concurrent;
using Broker.Core.Settings;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Replay;

/// <summary>
/// Called for each record of a catch-up read with the reader's position once the record is seen
/// (the next offset of every partition). Must not keep <paramref name="position"/>.
/// </summary>
public delegate ValueTask RecordHandler(ConsumeResult<byte[]?, byte[]?> record, ReadOnlySpan<long> position);

/// <summary>
/// Reads a range of a topic's history from Kafka for one subscriber (replay: <c>since</c>,
/// <c>last</c>, <c>earliest</c>), seeking by offset in every partition. Consumers are pooled and
/// the number of concurrent reads per node is bounded.
///
/// The partitions of a range are merged by record timestamp (ties: lower partition first), each
/// partition in offset order, so history arrives in the order it was written while every key keeps
/// its order. A bounded number of records per partition is buffered for the merge; a partition
/// that is far ahead is paused until the others catch up.
/// </summary>
public sealed class CatchUpReader : IDisposable
{
    /// <summary>Records buffered per partition before its fetching is paused.</summary>
    private const int MergeBuffer = 256;

    private readonly KafkaSettings _settings;
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentBag<IConsumer<byte[]?, byte[]?>> _pool = new();
    private readonly KafkaClientLog? _clientLog;
    private volatile bool _disposed;

    public CatchUpReader(KafkaSettings settings, KafkaClientLog? clientLog = null)
    {
        _settings = settings;
        _clientLog = clientLog;
        _slots = new SemaphoreSlim(settings.MaxConcurrentReplays, settings.MaxConcurrentReplays);
    }

    /// <summary>
    /// Hands every record between <paramref name="from"/> and <paramref name="to"/> (per partition:
    /// offsets in [from, to)) to <paramref name="write"/> in merge order, as <c>message</c> frames whose
    /// <c>pos</c> is the reader's position after the record. <paramref name="write"/> may wait
    /// (backpressure from the subscriber's connection). With <paramref name="keyFilter"/>, only records
    /// with exactly that key are written; with <paramref name="withHeaders"/>, frames carry the records' headers.
    /// </summary>
    public Task ReadAsync(string kafkaTopic, string topic, long[] from, long[] to, Func<byte[], ValueTask> write, CancellationToken ct,
        byte[]? keyFilter = null, bool withHeaders = false, ReplayShare? share = null) =>
        ReadRecordsAsync(kafkaTopic, from, to, (record, position) =>
            keyFilter is not null && !RecordFrames.KeyEquals(record, keyFilter)
                ? ValueTask.CompletedTask
                : write(RecordFrames.Build(topic, record, Position.Encode(position), withHeaders)), ct, share);

    /// <summary>
    /// Reads a multiplexed topic's history: the records of <paramref name="partition"/> of the shared
    /// Kafka topic in [<paramref name="from"/>, <paramref name="to"/>) whose Kafka key is
    /// <paramref name="topicKey"/> (the broker topic), as frames whose <c>pos</c> is the record's
    /// offset + 1. Records of other topics in between are read and skipped: a long range of a busy
    /// shared partition costs a scan (recent history is served from the feed's memory instead).
    /// </summary>
    public Task ReadSharedAsync(string kafkaTopic, int partition, byte[] topicKey, string topic, long from, long to, Func<byte[], ValueTask> write,
        CancellationToken ct, byte[]? keyFilter = null, bool withHeaders = false, ReplayShare? share = null)
    {
        var (starts, ends) = OnePartition(partition, from, to);
        return ReadRecordsAsync(kafkaTopic, starts, ends, (record, _) =>
        {
            if (!IsOf(record, topicKey) || (keyFilter is not null && !RecordFrames.KeyEquals(record, keyFilter, shared: true))) return ValueTask.CompletedTask;
            return write(RecordFrames.Build(topic, record, Position.Encode([record.Offset.Value + 1]), withHeaders, shared: true));
        }, ct, share);
    }

    /// <summary>
    /// The offset to read a multiplexed topic from so that its last <paramref name="count"/> records
    /// before <paramref name="high"/> are delivered: the partition is scanned backwards in growing
    /// chunks until that many records of the topic are found (or the oldest retained record is
    /// reached: then fewer exist, and the read starts there).
    /// </summary>
    public async Task<long> StartOfLastSharedAsync(string kafkaTopic, int partition, byte[] topicKey, long low, long high, int count, CancellationToken ct)
    {
        if (count <= 0) return high;
        var found = new List<long>(); // offsets of the topic's records from `end` to `high`, newest chunk first
        var end = high;
        var chunk = Math.Max(count * 8L, 4096);
        while (end > low)
        {
            var begin = Math.Max(low, end - chunk);
            var inChunk = new List<long>();
            var (starts, ends) = OnePartition(partition, begin, end);
            await ReadRecordsAsync(kafkaTopic, starts, ends, (record, _) =>
            {
                if (IsOf(record, topicKey)) inChunk.Add(record.Offset.Value);
                return ValueTask.CompletedTask;
            }, ct).ConfigureAwait(false);
            inChunk.AddRange(found);
            found = inChunk;
            if (found.Count >= count) return found[found.Count - count];
            end = begin;
            chunk *= 2;
        }
        return low;
    }

    private static bool IsOf(ConsumeResult<byte[]?, byte[]?> record, byte[] topicKey) =>
        record.Message.Key is { } k && k.AsSpan().SequenceEqual(topicKey);

    /// <summary>Per-partition ranges that read only [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="partition"/>.</summary>
    private static (long[] From, long[] To) OnePartition(int partition, long from, long to)
    {
        var starts = new long[partition + 1];
        var ends = new long[partition + 1];
        starts[partition] = from;
        ends[partition] = to;
        return (starts, ends);
    }

    /// <summary>
    /// The start of the last <paramref name="count"/> records of the topic between <paramref name="low"/>
    /// and <paramref name="high"/> in merge order: reading from it to <paramref name="high"/> yields
    /// exactly those records. One partition needs no read.
    /// </summary>
    public async Task<long[]> StartOfLastAsync(string kafkaTopic, long[] low, long[] high, int count, CancellationToken ct)
    {
        var start = new long[high.Length];
        for (var p = 0; p < start.Length; p++) start[p] = Math.Max(low[p], high[p] - count);
        if (high.Length == 1 || count <= 0)
        {
            if (count <= 0) high.CopyTo(start, 0);
            return start;
        }
        // The last `count` of the merge are among the last `count` of each partition: read those,
        // remember the last `count` (partition, offset) pairs in merge order.
        var tail = new (int Partition, long Offset)[count];
        var seen = 0L;
        await ReadRecordsAsync(kafkaTopic, start, high, (record, _) =>
        {
            tail[seen++ % count] = (record.Partition.Value, record.Offset.Value);
            return ValueTask.CompletedTask;
        }, ct).ConfigureAwait(false);
        var first = (long[])high.Clone();
        var kept = (int)Math.Min(seen, count);
        for (var i = 0; i < kept; i++)
        {
            var (p, o) = tail[i];
            if (o < first[p]) first[p] = o;
        }
        return first;
    }

    /// <summary>
    /// Hands every record between <paramref name="from"/> and <paramref name="to"/> (per partition:
    /// offsets in [from, to)) to <paramref name="handle"/> in merge order, with the position after it.
    /// <paramref name="share"/> bounds how many reads of one connection run at once, so that one
    /// client's many replays cannot take every slot of the node.
    /// <para>
    /// A read holds one of the node's slots (and a pooled consumer) only while it reads: when
    /// <paramref name="handle"/> makes it wait longer than <see cref="KafkaSettings.ReplayYieldAfter"/> (the client is
    /// not reading), it gives both back, waits without them, and goes on from where it stopped.
    /// </para>
    /// </summary>
    public async Task ReadRecordsAsync(string kafkaTopic, long[] from, long[] to, RecordHandler handle, CancellationToken ct, ReplayShare? share = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var any = false;
        for (var p = 0; p < to.Length; p++) any |= Start(from, p) < to[p];
        if (!any) return;
        var position = new long[to.Length];
        for (var p = 0; p < to.Length; p++) position[p] = Math.Min(Start(from, p), to[p]);
        if (share is not null) await share.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            while (true)
            {
                Task? blocked;
                await _slots.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    // Consume() blocks: each read gets a thread of its own (their number is bounded by
                    // the slots) instead of blocking the thread pool that connections and actors run on.
                    blocked = await Task.Factory.StartNew(() => ReadLoop(kafkaTopic, position, to, handle, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default)
                        .ConfigureAwait(false);
                }
                finally
                {
                    _slots.Release();
                }
                if (blocked is null) return;
                await blocked.WaitAsync(ct).ConfigureAwait(false); // without a slot: the client makes room
            }
        }
        finally
        {
            share?.Release();
        }
    }

    /// <summary>Reads holding one of the node's slots now (for operators and tests).</summary>
    public int ActiveReads => _settings.MaxConcurrentReplays - _slots.CurrentCount;

    /// <summary>A position may have fewer partitions than the topic (partitions added since): nothing of those was seen.</summary>
    private static long Start(long[] from, int partition) => partition < from.Length ? from[partition] : 0;

    /// <summary>
    /// Reads from <paramref name="position"/> (next offsets per partition, advanced as records are
    /// handed on) to <paramref name="to"/>. Returns null when the range is read, or the write a slow
    /// client keeps waiting: the caller waits for it without a slot and calls again from <paramref name="position"/>.
    /// </summary>
    private Task? ReadLoop(string kafkaTopic, long[] position, long[] to, RecordHandler handle, CancellationToken ct)
    {
        var n = to.Length;
        var reading = new bool[n];   // still has records to fetch in its range
        var paused = new bool[n];
        var buffered = new Queue<ConsumeResult<byte[]?, byte[]?>>?[n];
        var partitions = new TopicPartition[n];
        var assignment = new List<TopicPartitionOffset>(n);
        for (var p = 0; p < n; p++)
        {
            partitions[p] = new TopicPartition(kafkaTopic, p);
            if (position[p] >= to[p]) continue;
            reading[p] = true;
            buffered[p] = new Queue<ConsumeResult<byte[]?, byte[]?>>();
            assignment.Add(new TopicPartitionOffset(partitions[p], position[p]));
        }
        var consumer = Rent();
        try
        {
            consumer.Assign(assignment);
            var poll = _settings.ReplayPoll;
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                // Hand on records while the next one of every partition still being read is known.
                while (TryNext(buffered, reading, out var next))
                {
                    var record = buffered[next]!.Dequeue();
                    position[next] = record.Offset.Value + 1;
                    var written = handle(record, position);
                    if (!written.IsCompletedSuccessfully)
                    {
                        // Backpressure: wait a little on this thread; a client that takes longer gets
                        // its write waited for without the slot (the records buffered here are read again).
                        var pending = written.AsTask();
                        if (!pending.Wait(_settings.ReplayYieldAfter, ct)) return pending;
                        pending.GetAwaiter().GetResult(); // rethrows what the write threw
                    }
                    if (paused[next] && reading[next] && buffered[next]!.Count <= MergeBuffer / 2)
                    {
                        consumer.Resume([partitions[next]]);
                        paused[next] = false;
                    }
                }
                if (Finished(buffered, reading)) return null;
                var fetched = consumer.Consume(poll);
                if (fetched is null)
                {
                    // Nothing within the poll: a range may end in offsets without records, or
                    // retention may have deleted the rest of it since the read began.
                    for (var p = 0; p < n; p++)
                    {
                        if (reading[p] && buffered[p]!.Count == 0 && (consumer.Position(partitions[p]).Value >= to[p] || OldestRetained(consumer, partitions[p]) >= to[p]))
                            Stop(consumer, partitions[p], ref reading[p], ref paused[p]);
                    }
                    continue;
                }
                var at = fetched.Partition.Value;
                if (at >= n || !reading[at]) continue;
                if (fetched.Offset.Value >= to[at])
                {
                    Stop(consumer, partitions[at], ref reading[at], ref paused[at]);
                    continue;
                }
                buffered[at]!.Enqueue(fetched);
                if (fetched.Offset.Value + 1 >= to[at]) Stop(consumer, partitions[at], ref reading[at], ref paused[at]);
                else if (!paused[at] && buffered[at]!.Count >= MergeBuffer)
                {
                    consumer.Pause([partitions[at]]);
                    paused[at] = true;
                }
            }
        }
        finally
        {
            // librdkafka may keep a partition's pause flag across assignments: the pooled consumer
            // must not hand a paused partition to its next read.
            var stillPaused = new List<TopicPartition>();
            for (var p = 0; p < n; p++) if (paused[p]) stillPaused.Add(partitions[p]);
            try { if (stillPaused.Count > 0) consumer.Resume(stillPaused); } catch (KafkaException) { /* the consumer is disposed by Return if broken */ }
            Return(consumer);
        }
    }

    /// <summary>The partition's first retained offset (a query to the log; -1 when it cannot answer now).</summary>
    private long OldestRetained(IConsumer<byte[]?, byte[]?> consumer, TopicPartition partition)
    {
        try
        {
            return consumer.QueryWatermarkOffsets(partition, _settings.QueryTimeout).Low.Value;
        }
        catch (KafkaException)
        {
            return -1; // the log is unreachable: keep waiting for it
        }
    }

    private static void Stop(IConsumer<byte[]?, byte[]?> consumer, TopicPartition partition, ref bool reading, ref bool paused)
    {
        reading = false;
        if (paused) return;
        consumer.Pause([partition]); // its range is read: fetch no further
        paused = true;
    }

    /// <summary>
    /// The partition whose buffered record comes next: the earliest timestamp (then the lowest
    /// partition) among the buffered heads, once no partition still being read has an empty buffer.
    /// </summary>
    private static bool TryNext(Queue<ConsumeResult<byte[]?, byte[]?>>?[] buffered, bool[] reading, out int next)
    {
        next = -1;
        long best = 0;
        for (var p = 0; p < buffered.Length; p++)
        {
            var queue = buffered[p];
            if (queue is null) continue;
            if (queue.Count == 0)
            {
                if (reading[p]) return false; // its next record is not known yet
                continue;
            }
            var ts = queue.Peek().Message.Timestamp.UnixTimestampMs;
            if (next < 0 || ts < best)
            {
                next = p;
                best = ts;
            }
        }
        return next >= 0;
    }

    private static bool Finished(Queue<ConsumeResult<byte[]?, byte[]?>>?[] buffered, bool[] reading)
    {
        for (var p = 0; p < buffered.Length; p++)
        {
            if (reading[p] || buffered[p] is { Count: > 0 }) return false;
        }
        return true;
    }

    private IConsumer<byte[]?, byte[]?> Rent() =>
        _pool.TryTake(out var c) ? c : new ConsumerBuilder<byte[]?, byte[]?>(KafkaLog.ConsumerConfig(_settings, "broker-replay")).WithLog(_clientLog).Build();

    private void Return(IConsumer<byte[]?, byte[]?> consumer)
    {
        try
        {
            consumer.Unassign();
        }
        catch (KafkaException)
        {
            consumer.Dispose();
            return;
        }
        if (_disposed) consumer.Dispose();
        else _pool.Add(consumer);
    }

    public void Dispose()
    {
        _disposed = true;
        while (_pool.TryTake(out var c))
        {
            c.Close();
            c.Dispose();
        }
    }
}

/// <summary>
/// One connection's share of the node's replay slots: at most <c>max-replays-per-connection</c> of
/// its catch-up reads run at once; the others wait for them, not for other clients' reads.
/// </summary>
public sealed class ReplayShare(int concurrent)
{
    private readonly SemaphoreSlim _reads = new(concurrent, concurrent);

    public Task WaitAsync(CancellationToken ct) => _reads.WaitAsync(ct);

    public void Release() => _reads.Release();
}
