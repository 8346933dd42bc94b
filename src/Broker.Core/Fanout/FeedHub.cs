using System.Collections.Concurrent;
using System.Diagnostics;
using Broker.Core.Log;
using Broker.Core.Settings;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Fanout;

/// <summary>
/// The node's reader of Kafka: one consumer on one thread reads every topic that has local
/// subscribers, and each record is handed to its feed — a <see cref="TopicFeed"/> (a Kafka topic
/// that is one broker topic) or a <see cref="SharedFeed"/> (a multiplexed namespace's shared Kafka
/// topic, dispatched by record key). A record is encoded into its frame once per node and the same
/// bytes are offered to every local subscriber's outbound queue; the network is crossed once per
/// node, not once per subscriber.
/// <para>
/// Joins and leaves of a feed that is being read take the feed's lock and complete at once (the
/// thread dispatches under the same lock, so a subscriber joins between two records). Creating a
/// feed, assigning its partitions and dropping it <c>feed-linger</c> after its last subscriber
/// left happen on the reader thread.
/// </para>
/// </summary>
public sealed class FeedHub : IDisposable
{
    private readonly KafkaSettings _settings;
    private readonly RecentHistorySettings _history;
    private readonly OffsetIndexSettings _index;
    private readonly ILogger _logger;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly ConcurrentQueue<(Action Run, Action Abort)> _commands = new();
    private readonly ConcurrentDictionary<string, KafkaFeed> _feeds = new(StringComparer.Ordinal);
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly Metrics.BrokerMetrics _metrics;
    private long _lastHousekeeping;
    /// <summary>When the current outage of the log began (Stopwatch ticks); 0 while the log is reachable.</summary>
    private long _outageSince;
    private int _activeFeeds;

    /// <param name="partitionCount">How many partitions a Kafka topic has now (to notice added partitions); null: not watched.</param>
    /// <param name="history">Recent history of multiplexed topics; null: none.</param>
    /// <param name="clientLog">Where the consumer's librdkafka log goes; null: librdkafka's own (stderr).</param>
    /// <param name="index">The offset index of multiplexed topics; null: none (shared feeds linger out like the others).</param>
    public FeedHub(KafkaSettings settings, ILogger<FeedHub> logger, Metrics.BrokerMetrics? metrics = null,
        Func<string, CancellationToken, Task<int>>? partitionCount = null, RecentHistorySettings? history = null, KafkaClientLog? clientLog = null,
        OffsetIndexSettings? index = null)
    {
        _settings = settings;
        _history = history ?? RecentHistorySettings.None;
        _index = index ?? OffsetIndexSettings.Off;
        _logger = logger;
        _metrics = metrics ?? new Metrics.BrokerMetrics();
        var config = KafkaLog.ConsumerConfig(settings, "broker-feed");
        // A feed position the log no longer holds is an error here, not a silent jump to the oldest
        // record: the subscribers that would miss records must be told (see OffsetOutOfRange).
        config.AutoOffsetReset = AutoOffsetReset.Error;
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetErrorHandler((_, e) => LogKafkaError(e))
            .WithLog(clientLog)
            .Build();
        _thread = new Thread(Run) { IsBackground = true, Name = "broker-feed" };
        _thread.Start();
        if (partitionCount is not null) _ = WatchPartitionsAsync(partitionCount);
    }

    /// <summary>Number of Kafka topics this node currently reads.</summary>
    public int ActiveFeeds => Volatile.Read(ref _activeFeeds);

    // ---- feeds of one broker topic -----------------------------------------------------------

    /// <summary>Joins <paramref name="subscriber"/> at <paramref name="start"/> (next offsets per partition; missing partitions: 0).</summary>
    public Task<JoinResult> JoinAsync(string kafkaTopic, string topic, long[] start, IFeedSubscriber subscriber)
    {
        if (_feeds.TryGetValue(kafkaTopic, out var f) && f is TopicFeed live && start.Length <= live.Partitions)
        {
            lock (live.Gate)
            {
                if (!live.Removed) return Task.FromResult(live.Join(start, subscriber));
            }
        }
        var tcs = new TaskCompletionSource<JoinResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            var feed = TopicFeedFor(kafkaTopic, topic, start);
            if (start.Length > feed.Partitions) Widen(feed, start.Length);
            JoinResult result;
            lock (feed.Gate) result = feed.Join(start, subscriber);
            tcs.TrySetResult(result);
        }, () => tcs.TrySetException(new ObjectDisposedException(nameof(FeedHub))));
        return tcs.Task;
    }

    /// <summary>
    /// When the node already reads <paramref name="kafkaTopic"/>, joins <paramref name="subscriber"/>
    /// in step with its feed (a subscribe from "latest" needs no query of the log): <paramref name="joined"/>
    /// runs first, under the feed's lock, with the feed's position (it queues <c>subscribed</c>, so
    /// no message can overtake it). False: the node does not read the topic now.
    /// </summary>
    public bool TryJoinAtHead(string kafkaTopic, IFeedSubscriber subscriber, Func<long[], bool> joined)
    {
        if (!_feeds.TryGetValue(kafkaTopic, out var f) || f is not TopicFeed feed) return false;
        lock (feed.Gate)
        {
            if (feed.Removed) return false;
            var head = (long[])feed.Next.Clone();
            if (joined(head)) feed.JoinAtHead(subscriber);
            return true;
        }
    }

    /// <summary>Removes a subscriber; once this completes, the feed delivers nothing more to it.</summary>
    public Task LeaveAsync(string kafkaTopic, IFeedSubscriber subscriber)
    {
        if (_feeds.TryGetValue(kafkaTopic, out var f) && f is TopicFeed feed)
        {
            lock (feed.Gate) feed.Remove(subscriber);
        }
        return Task.CompletedTask;
    }

    private TopicFeed TopicFeedFor(string kafkaTopic, string topic, long[] start)
    {
        if (_feeds.TryGetValue(kafkaTopic, out var existing) && existing is TopicFeed feed) return feed;
        feed = new TopicFeed(kafkaTopic, topic, (long[])start.Clone());
        Assign(feed, 0);
        _feeds[kafkaTopic] = feed;
        _activeFeeds = _feeds.Count;
        return feed;
    }

    // ---- shared feeds (multiplexed namespaces) -------------------------------------------------

    /// <summary>Whether the node reads the shared Kafka topic now (its feed is assigned).</summary>
    public bool IsReading(string kafkaTopic) => _feeds.TryGetValue(kafkaTopic, out var f) && !Volatile.Read(ref f.Removed);

    /// <summary>
    /// Raised (on a thread-pool thread) when a shared feed with an offset index starts, with the
    /// feed's start per partition: the index holds what the feed reads from there; what lies before
    /// is for a backfill to add (<see cref="MergeBackfill"/>).
    /// </summary>
    public event Action<string, long[]>? IndexedFeedStarted;

    /// <summary>Starts reading a shared Kafka topic at <paramref name="from"/> (next offsets per partition), unless the node reads it already.</summary>
    public Task StartSharedAsync(string kafkaTopic, long[] from)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (!_feeds.TryGetValue(kafkaTopic, out var existing) || existing.Removed)
            {
                var index = _index.Enabled ? new OffsetIndex(from, _index.OffsetsPerTopic, _index.MaxTopics) : null;
                var feed = new SharedFeed(kafkaTopic, (long[])from.Clone(), _history, index);
                Assign(feed, 0);
                _feeds[kafkaTopic] = feed;
                _activeFeeds = _feeds.Count;
                if (index is not null && IndexedFeedStarted is { } started)
                {
                    var start = (long[])from.Clone();
                    ThreadPool.QueueUserWorkItem(_ => started(kafkaTopic, start));
                }
            }
            tcs.TrySetResult();
        }, () => tcs.TrySetException(new ObjectDisposedException(nameof(FeedHub))));
        return tcs.Task;
    }

    /// <summary>
    /// The offsets of a multiplexed topic's last <paramref name="n"/> records from the shared feed's
    /// offset index (see <see cref="SharedFeed.LastOffsets"/>). While the feed has not read up to
    /// <paramref name="head"/> it is asked again, for at most <c>offset-index.catch-up-wait</c> and
    /// only while the feed's pace says it gets there within that time (a feed far behind, e.g. under
    /// a burst of records, is not waited for: the scan is faster then). Then, or when the node keeps
    /// no index of the topic, the answer is <see cref="IndexLookup.Unknown"/>.
    /// </summary>
    public async Task<IndexAnswer> LastOffsetsAsync(string kafkaTopic, string topic, int partition, int n, long low, long head, CancellationToken ct)
    {
        var unknown = new IndexAnswer(IndexLookup.Unknown, [], 0);
        if (!_index.Enabled) return unknown;
        var since = Stopwatch.GetTimestamp();
        long first = -1;
        while (true)
        {
            if (Shared(kafkaTopic) is not { } feed) return unknown;
            IndexAnswer answer;
            lock (feed.Gate) answer = feed.Removed ? unknown : feed.LastOffsets(topic, partition, n, low, head);
            if (answer.Outcome != IndexLookup.Behind) return answer;
            var waited = Stopwatch.GetElapsedTime(since);
            if (first < 0) first = answer.End;
            else if (!CatchesUp(answer.End - first, head - answer.End, waited, _index.CatchUpWait - waited)) return unknown;
            if (waited >= _index.CatchUpWait) return unknown;
            await Task.Delay(CatchUpPoll, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// How often a <c>last: N</c> waiting for the feed to reach the log's end asks again. A constant,
    /// not a setting (like <see cref="StallGrace"/> and <see cref="FewBehind"/>, the pace test's
    /// thresholds, which the unit tests pin): the wait is bounded by <c>offset-index.catch-up-wait</c>,
    /// the operator's knob.
    /// </summary>
    private static readonly TimeSpan CatchUpPoll = TimeSpan.FromMilliseconds(2);

    /// <summary>How long a feed that has not moved yet is waited for (a fetch, a busy reader thread) before it counts as stalled.</summary>
    private static readonly TimeSpan StallGrace = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Whether a feed that read <paramref name="read"/> records of the partition in <paramref name="took"/>
    /// reads the <paramref name="left"/> still before the log's end within <paramref name="time"/> at that pace.
    /// </summary>
    internal static bool CatchesUp(long read, long left, TimeSpan took, TimeSpan time) =>
        time > TimeSpan.Zero && (read > 0
            ? left * took.Ticks <= read * time.Ticks
            : took < StallGrace || left <= FewBehind); // not moving yet: it may be waiting for its next fetch, or a busy thread

    /// <summary>A feed this few records behind is waited for even when it has not moved yet (it reads them in one fetch).</summary>
    private const long FewBehind = 1000;

    /// <summary>Merges a backfill of <paramref name="partition"/> that ends at <paramref name="end"/> (where the feed started) into the feed's offset index; false when the feed or its start changed meanwhile.</summary>
    internal bool MergeBackfill(string kafkaTopic, int partition, long end, OffsetIndex backfill)
    {
        if (Shared(kafkaTopic) is not { } feed) return false;
        lock (feed.Gate) return !feed.Removed && feed.MergeBackfill(partition, end, backfill);
    }

    /// <summary>The offset index's limits (for a backfill's own index).</summary>
    internal OffsetIndexSettings IndexSettings => _index;

    private SharedFeed? Shared(string kafkaTopic) => _feeds.TryGetValue(kafkaTopic, out var f) ? f as SharedFeed : null;

    /// <summary>Joins a multiplexed topic in step with its shared feed (see <see cref="TryJoinAtHead"/>); false when the node does not read the shared topic now.</summary>
    public bool TryJoinSharedAtHead(string kafkaTopic, string topic, int partition, IFeedSubscriber subscriber, Func<long, bool> joined)
    {
        if (Shared(kafkaTopic) is not { } feed) return false;
        lock (feed.Gate)
        {
            if (feed.Removed) return false;
            feed.JoinAtHead(topic, partition, subscriber, joined);
            return true;
        }
    }

    /// <summary>
    /// Joins a multiplexed topic at <paramref name="start"/> (the next offset of its partition it has not
    /// seen); history the feed's recent frames cover is queued by <paramref name="history"/> in the same
    /// step. Null when the node does not read the shared topic now.
    /// </summary>
    public JoinResult? JoinShared(string kafkaTopic, string topic, int partition, long start, IFeedSubscriber subscriber, Func<List<byte[]>, bool> history)
    {
        if (Shared(kafkaTopic) is not { } feed) return null;
        lock (feed.Gate)
        {
            return feed.Removed ? null : feed.Join(topic, partition, start, subscriber, history);
        }
    }

    /// <summary><c>last: N</c> of a multiplexed topic from the shared feed's recent history (see <see cref="SharedFeed.TryJoinLast"/>).</summary>
    public bool TryJoinSharedLast(string kafkaTopic, string topic, int partition, int n, long retainedFrom, long head, IFeedSubscriber subscriber, Func<long, List<byte[]>, bool> joined)
    {
        if (Shared(kafkaTopic) is not { } feed) return false;
        lock (feed.Gate)
        {
            return !feed.Removed && feed.TryJoinLast(topic, partition, n, retainedFrom, head, subscriber, joined);
        }
    }

    /// <summary>Removes a subscriber of a multiplexed topic; once this returns, nothing more is delivered to it.</summary>
    public void LeaveShared(string kafkaTopic, string topic, IFeedSubscriber subscriber)
    {
        if (Shared(kafkaTopic) is not { } feed) return;
        lock (feed.Gate) feed.Remove(topic, subscriber);
    }

    // ---- partitions ----------------------------------------------------------------------------

    /// <summary>
    /// The topic gained partitions: the feed reads the new ones from their beginning. Everything in
    /// them was written after the partitions were added, so after every current subscriber joined.
    /// Runs on the reader thread.
    /// </summary>
    private void Widen(KafkaFeed feed, int partitions)
    {
        int known;
        lock (feed.Gate)
        {
            known = feed.Partitions;
            if (partitions <= known) return;
            feed.Widen(partitions);
        }
        Assign(feed, known);
        _logger.LogInformation("Feed {Topic}: the Kafka topic now has {Partitions} partitions (was {Known}); reading the new ones", feed.KafkaTopic, partitions, known);
    }

    /// <summary>
    /// Every <see cref="KafkaSettings.PartitionRefresh"/>, asks the log how many partitions the read
    /// topics have, so that subscribers also get the records of partitions added to a topic.
    /// </summary>
    private async Task WatchPartitionsAsync(Func<string, CancellationToken, Task<int>> partitionCount)
    {
        using var timer = new PeriodicTimer(_settings.PartitionRefresh);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                foreach (var feed in _feeds.Values)
                {
                    int count;
                    try { count = await partitionCount(feed.KafkaTopic, _stop.Token).ConfigureAwait(false); }
                    catch (Exception e) when (e is KafkaException or TopicNotFoundException or TimeoutException) { continue; } // asked again next time
                    if (count > feed.Partitions) Post(() => { if (!feed.Removed) Widen(feed, count); }, static () => { });
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Assigns the feed's partitions from <paramref name="first"/> on, each at the feed's position.</summary>
    private void Assign(KafkaFeed feed, int first)
    {
        var partitions = new List<TopicPartitionOffset>(feed.Partitions - first);
        lock (feed.Gate)
        {
            for (var p = first; p < feed.Next.Length; p++) partitions.Add(new TopicPartitionOffset(feed.KafkaTopic, p, feed.Next[p]));
        }
        _consumer.IncrementalAssign(partitions);
    }

    // ---- operators -------------------------------------------------------------------------------

    /// <summary>The feeds this node reads, taken on the reader thread (for operators and metrics, not the hot path).</summary>
    public Task<IReadOnlyList<FeedState>> SnapshotAsync()
    {
        var tcs = new TaskCompletionSource<IReadOnlyList<FeedState>>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            var list = new List<FeedState>(_feeds.Count);
            foreach (var feed in _feeds.Values)
            {
                long high = 0;
                for (var p = 0; p < feed.Partitions; p++)
                {
                    try
                    {
                        var wm = _consumer.GetWatermarkOffsets(new TopicPartition(feed.KafkaTopic, p));
                        if (wm.High == Offset.Unset) high = -1;
                        else if (high >= 0) high += wm.High.Value;
                    }
                    catch (KafkaException) { high = -1; /* not known yet */ }
                }
                lock (feed.Gate) list.Add(feed.State(high));
            }
            tcs.TrySetResult(list);
        }, () => tcs.TrySetResult([]));
        return tcs.Task;
    }

    /// <summary>The broker topics with local subscribers (at most <paramref name="limit"/>), for operators.</summary>
    public IReadOnlyList<TopicSubscriberCount> Subscribers(int limit = int.MaxValue)
    {
        var list = new List<TopicSubscriberCount>();
        foreach (var feed in _feeds.Values)
        {
            if (list.Count >= limit) break;
            lock (feed.Gate)
            {
                if (!feed.Removed) feed.Describe(list, limit);
            }
        }
        return list;
    }

    // ---- the reader thread ---------------------------------------------------------------------

    private void Post(Action run, Action abort)
    {
        if (_stop.IsCancellationRequested) abort();
        else _commands.Enqueue((run, abort));
    }

    private void Run()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                while (_commands.TryDequeue(out var command)) command.Run();
                if (_feeds.IsEmpty)
                {
                    // Nothing assigned: wait for a command without spinning the consumer.
                    _stop.Token.WaitHandle.WaitOne(_settings.FeedPoll);
                    continue;
                }
                var record = _consumer.Consume(_settings.FeedPoll);
                if (record is not null && !record.IsPartitionEOF) Dispatch(record);
                Housekeeping();
            }
            catch (ConsumeException e) when (e.Error.Code == ErrorCode.Local_AutoOffsetReset && e.ConsumerRecord is { } at)
            {
                try
                {
                    OffsetOutOfRange(at.Topic, at.Partition.Value);
                }
                catch (KafkaException k)
                {
                    // Not reassigned: the next fetch reports the same error and this is tried again.
                    _logger.LogWarning("Feed {Topic}: could not move partition {Partition} past the records the log no longer holds: {Reason}", at.Topic, at.Partition.Value, k.Error.Reason);
                }
            }
            catch (ConsumeException e)
            {
                LogKafkaError(e.Error);
            }
            catch (KafkaException e)
            {
                LogKafkaError(e.Error);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _logger.LogError(e, "Feed loop error");
            }
        }
    }

    private void Dispatch(ConsumeResult<byte[]?, byte[]?> record)
    {
        if (!_feeds.TryGetValue(record.Topic, out var feed)) return;
        if (_outageSince != 0) LogRecovered(record);
        int delivered;
        lock (feed.Gate) delivered = feed.Dispatch(record);
        if (delivered == 0) return;
        _metrics.MessagesDelivered(delivered);
        var produced = record.Message.Timestamp;
        if (produced.Type != TimestampType.NotAvailable)
            _metrics.DeliveryLatency.Observe((DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - produced.UnixTimestampMs) / 1000.0);
    }

    /// <summary>
    /// The log does not hold the feed's next offset in <paramref name="partition"/>: retention
    /// deleted records before the feed read them (the feed lagged), or the log was reset. Every
    /// subscriber whose own position there is no longer in the log would miss records: it is
    /// removed and told (it resumes with <c>since</c> and gets <c>recovered: false</c>). The feed
    /// goes on from the oldest retained record for the others.
    /// </summary>
    private void OffsetOutOfRange(string kafkaTopic, int partition)
    {
        if (!_feeds.TryGetValue(kafkaTopic, out var feed) || partition >= feed.Partitions) return;
        var tp = new TopicPartition(kafkaTopic, partition);
        long low = 0, high;
        try
        {
            var wm = _consumer.QueryWatermarkOffsets(tp, _settings.QueryTimeout);
            low = Math.Max(0, wm.Low.Value);
            high = Math.Max(low, wm.High.Value);
        }
        catch (KafkaException)
        {
            high = -1; // unknown: nobody's position can be trusted
        }
        long was, next;
        int lost;
        lock (feed.Gate)
        {
            was = feed.Next[partition];
            lost = feed.LoseBefore(partition, low, high);
            next = feed.Next[partition];
        }
        _logger.LogWarning("Feed {Topic}: partition {Partition} no longer holds offset {Offset} (retained {Low}..{High}); {Lost} subscriber(s) would miss records and were closed to resume",
            kafkaTopic, partition, was, low, high, lost);
        // After the reset error the partition stops fetching (a seek is refused): assign it anew.
        _consumer.IncrementalUnassign([tp]);
        _consumer.IncrementalAssign([new TopicPartitionOffset(tp, next)]);
    }

    /// <summary>Every <c>feed-linger-check</c>: drops feeds idle past their linger; shared feeds forget idle topics.</summary>
    private void Housekeeping()
    {
        var now = Stopwatch.GetTimestamp();
        if (Stopwatch.GetElapsedTime(_lastHousekeeping, now) < _settings.FeedLingerCheck) return;
        _lastHousekeeping = now;
        List<TopicPartition>? drop = null;
        foreach (var feed in _feeds.Values)
        {
            lock (feed.Gate)
            {
                feed.Sweep(now);
                if (feed.Subscribers > 0 || feed.Permanent) continue;
                if (feed.EmptySince == 0) feed.EmptySince = now;
                else if (Stopwatch.GetElapsedTime(feed.EmptySince, now) >= _settings.FeedLinger)
                {
                    feed.Removed = true;
                    drop ??= [];
                    for (var p = 0; p < feed.Partitions; p++) drop.Add(new TopicPartition(feed.KafkaTopic, p));
                }
            }
        }
        if (drop is null) return;
        _consumer.IncrementalUnassign(drop);
        foreach (var tp in drop) _feeds.TryRemove(tp.Topic, out _);
        _activeFeeds = _feeds.Count;
    }

    // The error handler runs inside Consume(), on the reader thread, like Dispatch.
    private void LogKafkaError(Error e)
    {
        // Log an outage once, not once per poll or per message; its end is logged once too.
        if (_outageSince != 0) return;
        _outageSince = Math.Max(1, Stopwatch.GetTimestamp());
        _logger.LogWarning("Kafka feed reader: the log is unreachable: {Reason} ({Code}); subscribers stay connected, their feeds resume where they stopped when it returns",
            e.Reason, e.Code);
    }

    private void LogRecovered(ConsumeResult<byte[]?, byte[]?> first)
    {
        var lasted = Stopwatch.GetElapsedTime(_outageSince);
        _outageSince = 0;
        // A warning like the outage, so that an operator who sees one sees the other.
        _logger.LogWarning("Kafka feed reader: the log is reachable again after {Seconds:F1} s; feeds resumed ({Topic} at offset {Offset})",
            lasted.TotalSeconds, first.Topic, first.Offset.Value);
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _thread.Join(_settings.CloseTimeout);
        try { _consumer.Close(); } catch (KafkaException) { }
        _consumer.Dispose();
        while (_commands.TryDequeue(out var c)) c.Abort();
    }
}
