using System.Collections.Concurrent;
using Broker.Core.Settings;
using Confluent.Kafka;

namespace Broker.Core.Log;

/// <summary>
/// Reads a range of a topic's history from Kafka for one subscriber (replay: <c>since</c>,
/// <c>last</c>, <c>earliest</c>), seeking by offset. Consumers are pooled and the number of
/// concurrent reads per node is bounded.
/// </summary>
public sealed class CatchUpReader : IDisposable
{
    private readonly KafkaSettings _settings;
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentBag<IConsumer<byte[]?, byte[]?>> _pool = new();
    private volatile bool _disposed;

    public CatchUpReader(KafkaSettings settings)
    {
        _settings = settings;
        _slots = new SemaphoreSlim(settings.MaxConcurrentReplays, settings.MaxConcurrentReplays);
    }

    /// <summary>
    /// Hands every record with offset in [<paramref name="from"/>, <paramref name="to"/>) of partition 0
    /// to <paramref name="write"/> in order, as <c>message</c> frames. <paramref name="write"/> may wait
    /// (backpressure from the subscriber's connection). With <paramref name="keyFilter"/>, only records
    /// with exactly that key are written; with <paramref name="withHeaders"/>, frames carry the records' headers.
    /// </summary>
    public Task ReadAsync(string kafkaTopic, string topic, long from, long to, Func<byte[], ValueTask> write, CancellationToken ct,
        byte[]? keyFilter = null, bool withHeaders = false) =>
        ReadRecordsAsync(kafkaTopic, from, to, record =>
            keyFilter is not null && !RecordFrames.KeyEquals(record, keyFilter) ? ValueTask.CompletedTask : write(RecordFrames.Build(topic, record, withHeaders)), ct);

    /// <summary>Hands every record of partition 0 with offset in [<paramref name="from"/>, <paramref name="to"/>) to <paramref name="handle"/>, in order.</summary>
    public async Task ReadRecordsAsync(string kafkaTopic, long from, long to, Func<ConsumeResult<byte[]?, byte[]?>, ValueTask> handle, CancellationToken ct)
    {
        if (from >= to) return;
        await _slots.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // Consume() blocks: each replay gets a thread of its own (their number is bounded by the
            // slots) instead of blocking the thread pool that connections and actors run on.
            await Task.Factory.StartNew(() => ReadLoop(kafkaTopic, from, to, handle, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default)
                .ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    private void ReadLoop(string kafkaTopic, long from, long to, Func<ConsumeResult<byte[]?, byte[]?>, ValueTask> handle, CancellationToken ct)
    {
        var consumer = Rent();
        var tp = new TopicPartition(kafkaTopic, 0);
        try
        {
            consumer.Assign(new TopicPartitionOffset(tp, from));
            var poll = TimeSpan.FromMilliseconds(100);
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var record = consumer.Consume(poll);
                if (record is null)
                {
                    // Nothing within the poll: the range may end in offsets without records.
                    if (consumer.Position(tp).Value >= to) return;
                    continue;
                }
                if (record.Offset.Value >= to) return;
                var written = handle(record);
                if (!written.IsCompletedSuccessfully) written.AsTask().GetAwaiter().GetResult(); // backpressure: this thread waits
                if (record.Offset.Value + 1 >= to) return;
            }
        }
        finally
        {
            Return(consumer);
        }
    }

    private IConsumer<byte[]?, byte[]?> Rent() =>
        _pool.TryTake(out var c) ? c : new ConsumerBuilder<byte[]?, byte[]?>(KafkaLog.ConsumerConfig(_settings, "broker-replay")).Build();

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
