using System.Diagnostics;
using Broker.Core.Log;
using Broker.Core.Replay;
using Broker.Core.Settings;
using Broker.Protocol;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Fanout;

/// <summary>
/// Keeps the offset index of every multiplexed namespace filled (<c>broker.fanout.offset-index</c>):
/// once a namespace's shared Kafka topic exists — found at node start or later, or created through
/// this node — the node reads it for as long as it runs (its <see cref="SharedFeed"/> is permanent),
/// and when that feed starts, the records before its start are read once from the log
/// (at most <c>backfill-records</c> per partition) into the index. The cost: every node reads every
/// shared partition of the multiplexed namespaces, with or without subscribers.
/// </summary>
public sealed class OffsetIndexing : IDisposable
{
    private readonly FeedHub _feeds;
    private readonly KafkaLog _log;
    private readonly CatchUpReader _replay;
    private readonly ILogger _logger;
    private readonly IReadOnlyList<TopicMapping> _shared;
    private readonly CancellationTokenSource _stop = new();

    public OffsetIndexing(FeedHub feeds, KafkaLog log, CatchUpReader replay, ILogger<OffsetIndexing> logger)
    {
        _feeds = feeds;
        _log = log;
        _replay = replay;
        _logger = logger;
        _shared = log.Settings.Namespaces.Where(n => n.Multiplex).DistinctBy(n => n.KafkaTopic).Select(n => n.SharedMapping()).ToList();
        feeds.IndexedFeedStarted += Backfill;
        log.TopicEnsured += Ensured;
    }

    /// <summary>
    /// Starts reading the shared Kafka topics that exist already; the others are looked for every
    /// <c>kafka.partition-refresh</c> (another node or service may create them) until all are read.
    /// </summary>
    public void Start() => _ = WatchAsync();

    private async Task WatchAsync()
    {
        if (_shared.Count == 0) return;
        try
        {
            using var timer = new PeriodicTimer(_log.Settings.PartitionRefresh);
            do
            {
                var missing = false;
                foreach (var mapping in _shared)
                {
                    if (_feeds.IsReading(mapping.KafkaTopic)) continue;
                    try
                    {
                        // Only an existing topic: a namespace's topic is created on its first use (with its partitions), not here.
                        if (await _log.TopicExistsAsync(mapping.KafkaTopic, _stop.Token).ConfigureAwait(false))
                            await SharedFeeds.EnsureReadingAsync(_feeds, _log, mapping, _stop.Token).ConfigureAwait(false);
                        else missing = true;
                    }
                    catch (Exception e) when (e is TopicNotFoundException or KafkaException or TimeoutException)
                    {
                        missing = true;
                    }
                }
                if (!missing) return;
            }
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { } // the node is stopping
    }

    /// <summary>A Kafka topic was found or created through this node: a multiplexed namespace's is read from now on.</summary>
    private void Ensured(TopicMapping mapping)
    {
        if (!mapping.Multiplexed || _stop.IsCancellationRequested || _feeds.IsReading(mapping.KafkaTopic)) return;
        _ = ReadAsync(mapping);
    }

    private async Task ReadAsync(TopicMapping mapping)
    {
        try
        {
            await SharedFeeds.EnsureReadingAsync(_feeds, _log, mapping, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TopicNotFoundException or KafkaException or TimeoutException or OperationCanceledException or ObjectDisposedException)
        {
            // The next subscribe of the namespace (or the watch) starts it.
            _logger.LogDebug("Offset index of {Topic}: not started now ({Reason})", mapping.KafkaTopic, e.Message);
        }
    }

    /// <summary>An indexed feed started at <paramref name="start"/>: adds each partition's records before it (bounded) to its index.</summary>
    private void Backfill(string kafkaTopic, long[] start) => _ = BackfillAsync(kafkaTopic, start);

    private async Task BackfillAsync(string kafkaTopic, long[] start)
    {
        var limits = _feeds.IndexSettings;
        var began = Stopwatch.GetTimestamp();
        long records = 0;
        try
        {
            for (var p = 0; p < start.Length; p++)
            {
                var wm = await _log.QueryWatermarksAsync(kafkaTopic, p, _stop.Token).ConfigureAwait(false);
                var from = Math.Clamp(start[p] - limits.BackfillRecords, Math.Max(0, wm.Low.Value), start[p]);
                var begin = new long[p + 1];
                var end = new long[p + 1];
                begin[p] = from;
                end[p] = start[p];
                var found = new OffsetIndex(begin, limits.OffsetsPerTopic, limits.MaxTopics);
                var partitions = start.Length;
                await _replay.ReadRecordsAsync(kafkaTopic, begin, end, (record, _) =>
                {
                    records++;
                    Add(found, record, partitions);
                    return ValueTask.CompletedTask;
                }, _stop.Token).ConfigureAwait(false);
                if (!_feeds.MergeBackfill(kafkaTopic, p, start[p], found)) return; // the feed changed meanwhile: its index is exact without it
            }
            _logger.LogInformation("Offset index of {Topic}: backfilled {Records} records of {Partitions} partitions in {Seconds:F1} s",
                kafkaTopic, records, start.Length, Stopwatch.GetElapsedTime(began).TotalSeconds);
        }
        catch (Exception e) when (e is KafkaException or TimeoutException or OperationCanceledException or ObjectDisposedException)
        {
            // The index stays exact: it answers from where the feed started, and older questions scan the log.
            _logger.LogWarning("Offset index of {Topic}: the backfill stopped ({Reason}); last: N older than the node's feed reads the log", kafkaTopic, e.Message);
        }
    }

    /// <summary>Adds a record to a backfill's index when its key names a topic of the partition it is in (as the feed does).</summary>
    private static void Add(OffsetIndex found, ConsumeResult<byte[]?, byte[]?> record, int partitions)
    {
        var key = record.Message.Key;
        if (key is null || key.Length is 0 or > TopicName.MaxLength) return;
        Span<char> name = stackalloc char[key.Length];
        for (var i = 0; i < key.Length; i++) name[i] = (char)key[i]; // topic names are ASCII; anything else is not a topic
        var partition = record.Partition.Value;
        if (!TopicName.IsValid(name) || KafkaPartitioner.Partition(key, partitions) != partition) return;
        found.Add(partition, name, record.Offset.Value);
    }

    public void Dispose()
    {
        _feeds.IndexedFeedStarted -= Backfill;
        _log.TopicEnsured -= Ensured;
        _stop.Cancel();
    }
}
