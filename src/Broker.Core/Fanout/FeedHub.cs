using Broker.Core.Log;
using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Topics;
using System.Collections.Concurrent;
using System.Diagnostics;
using Broker.Core.Settings;
using Broker.Protocol;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Fanout;

/// <summary>A local subscriber of a node feed: a connection's subscription to one topic.</summary>
public interface IFeedSubscriber
{
    /// <summary>
    /// Called on the feed thread with a frame shared by every subscriber. Must not block.
    /// Returns false when the subscriber cannot take it (its connection is being closed as a
    /// slow consumer); the feed then drops the subscriber.
    /// </summary>
    bool TryDeliver(byte[] frame);

    /// <summary>
    /// When not null, only records whose Kafka key is exactly these bytes are delivered to this
    /// subscriber (read once, when it joins).
    /// </summary>
    byte[]? KeyFilter => null;

    /// <summary>Whether this subscriber's frames carry the records' headers (read once, when it joins).</summary>
    bool WithHeaders => false;

    /// <summary>
    /// Called on the feed thread when the log no longer holds records this subscriber has not yet
    /// received (retention deleted them before the feed read them, or the log was reset). The
    /// subscriber has been removed from the feed; it must resume from its last position to learn
    /// what was lost (<c>recovered: false</c>). Must not block.
    /// </summary>
    void Lost() { }
}

/// <summary>
/// The answer to a join: either the subscriber is live, or it must first catch up to
/// <see cref="CatchUpTo"/> (next offsets per partition).
/// </summary>
public readonly record struct JoinResult(bool Joined, long[] CatchUpTo);

/// <summary>
/// One feed of a node: the broker topic, its Kafka topic, its partitions, the local subscribers,
/// the records the feed has read (the sum of its next offsets over the partitions) and the sum of
/// the partitions' high watermarks as last seen by the reader (-1 when not yet known).
/// </summary>
public readonly record struct FeedState(string Topic, string KafkaTopic, int Subscribers, long Next, long HighWatermark, int Partitions = 1)
{
    /// <summary>Records in the log the feed has not yet read (0 when the watermark is unknown).</summary>
    public long Lag => HighWatermark < 0 ? 0 : Math.Max(0, HighWatermark - Next);
}

/// <summary>
/// The node-local feeds: one Kafka reader per topic per node, shared by all local subscribers.
/// A single consumer (one thread) reads every topic that has local subscribers; topics are
/// assigned when their first local subscriber joins and unassigned a while after the last one
/// leaves. Each record is encoded once into a frame and offered to every local subscriber.
///
/// A feed reads every partition of its topic and keeps, per partition, the offset of the next
/// record it delivers: its position. The <c>pos</c> of a frame is the feed's position once the
/// record is read (the record's own offset + 1 in its partition, the feed's progress in the others),
/// so one frame serves every subscriber that is in step with the feed.
///
/// Handover from history to live is positional, per partition: a subscriber joins at position S.
/// If the feed has not yet delivered past S in any partition, the subscriber is added and receives
/// every record from S on. If the feed is ahead in some partition (at F), the join answers "catch up
/// to max(S, F)": the subscriber reads that range from Kafka with a catch-up reader and joins again.
/// A subscriber that joins ahead of the feed in some partition (the feed lags the log) skips what
/// it has seen and gets frames with its own position until the feed reaches it. All joins and
/// deliveries run on the feed thread, so no record is missed or delivered twice at the seam.
/// </summary>
public sealed class FeedHub : IDisposable
{
    private readonly KafkaSettings _settings;
    private readonly ILogger _logger;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly ConcurrentQueue<(Action Run, Action Abort)> _commands = new();
    private readonly Dictionary<string, Feed> _feeds = new(StringComparer.Ordinal);
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private long _lastLingerCheck;
    /// <summary>When the current outage of the log began (Stopwatch ticks); 0 while the log is reachable.</summary>
    private long _outageSince;
    private readonly Metrics.BrokerMetrics _metrics;

    /// <param name="partitionCount">How many partitions a Kafka topic has now (to notice added partitions); null: not watched.</param>
    public FeedHub(KafkaSettings settings, ILogger<FeedHub> logger, Metrics.BrokerMetrics? metrics = null,
        Func<string, CancellationToken, Task<int>>? partitionCount = null)
    {
        _settings = settings;
        _logger = logger;
        _metrics = metrics ?? new Metrics.BrokerMetrics();
        var config = KafkaLog.ConsumerConfig(settings, "broker-feed");
        // A feed position the log no longer holds is an error here, not a silent jump to the oldest
        // record: the subscribers that would miss records must be told (see OffsetOutOfRange).
        config.AutoOffsetReset = AutoOffsetReset.Error;
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetErrorHandler((_, e) => LogKafkaError(e))
            .Build();
        _thread = new Thread(Run) { IsBackground = true, Name = "broker-feed" };
        _thread.Start();
        if (partitionCount is not null) _ = WatchPartitionsAsync(partitionCount);
    }

    /// <summary>Number of topics this node currently reads.</summary>
    public int ActiveFeeds => Volatile.Read(ref _activeFeeds);
    private int _activeFeeds;

    /// <summary>Joins <paramref name="subscriber"/> at <paramref name="start"/> (next offsets per partition; missing partitions: 0).</summary>
    public Task<JoinResult> JoinAsync(string kafkaTopic, string topic, long[] start, IFeedSubscriber subscriber)
    {
        var tcs = new TaskCompletionSource<JoinResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (!_feeds.TryGetValue(kafkaTopic, out var feed))
            {
                feed = new Feed(kafkaTopic, topic, (long[])start.Clone());
                Assign(feed, 0);
                _feeds.Add(kafkaTopic, feed);
                _activeFeeds = _feeds.Count;
            }
            else if (start.Length > feed.Next.Length) Widen(feed, start.Length);
            var position = feed.Next;
            long[]? catchUp = null;
            var inStep = start.Length == position.Length;
            for (var p = 0; p < position.Length; p++)
            {
                var s = p < start.Length ? start[p] : 0;
                if (position[p] > s) (catchUp ??= Widened(start, position.Length))[p] = position[p];
                else if (position[p] != s) inStep = false;
            }
            if (catchUp is not null)
            {
                tcs.TrySetResult(new JoinResult(false, catchUp));
                return;
            }
            feed.Subscribers.Add(new Member(subscriber, inStep ? null : Widened(start, position.Length), subscriber.KeyFilter, subscriber.WithHeaders));
            feed.EmptySince = 0;
            tcs.TrySetResult(new JoinResult(true, start));
        }, () => tcs.TrySetException(new ObjectDisposedException(nameof(FeedHub))));
        return tcs.Task;
    }

    private static long[] Widened(long[] position, int partitions)
    {
        var copy = new long[Math.Max(partitions, position.Length)];
        position.CopyTo(copy, 0);
        return copy;
    }

    /// <summary>
    /// The topic gained partitions: the feed reads the new ones from their beginning. Everything in
    /// them was written after the partitions were added, so after every current subscriber joined.
    /// </summary>
    private void Widen(Feed feed, int partitions)
    {
        var known = feed.Next.Length;
        if (partitions <= known) return;
        feed.Next = Widened(feed.Next, partitions);
        foreach (var m in feed.Subscribers) m.Widen(partitions);
        Assign(feed, known);
        _logger.LogInformation("Feed {Topic}: the Kafka topic {KafkaTopic} now has {Partitions} partitions (was {Known}); reading the new ones", feed.Topic, feed.KafkaTopic, partitions, known);
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
                foreach (var feed in await SnapshotAsync().ConfigureAwait(false))
                {
                    int count;
                    try { count = await partitionCount(feed.KafkaTopic, _stop.Token).ConfigureAwait(false); }
                    catch (Exception e) when (e is KafkaException or TopicNotFoundException or TimeoutException) { continue; } // asked again next time
                    if (count > feed.Partitions)
                        Post(() => { if (_feeds.TryGetValue(feed.KafkaTopic, out var f)) Widen(f, count); }, static () => { });
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Assigns the feed's partitions from <paramref name="first"/> on, each at the feed's position.</summary>
    private void Assign(Feed feed, int first)
    {
        var partitions = new List<TopicPartitionOffset>(feed.Next.Length - first);
        for (var p = first; p < feed.Next.Length; p++) partitions.Add(new TopicPartitionOffset(feed.KafkaTopic, p, feed.Next[p]));
        _consumer.IncrementalAssign(partitions);
    }

    /// <summary>Removes a subscriber; once this completes, the feed delivers nothing more to it.</summary>
    public Task LeaveAsync(string kafkaTopic, IFeedSubscriber subscriber)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (_feeds.TryGetValue(kafkaTopic, out var feed)) feed.Remove(subscriber);
            tcs.TrySetResult();
        }, () => tcs.TrySetResult());
        return tcs.Task;
    }

    /// <summary>The feeds this node reads, taken on the feed thread (for operators and metrics, not the hot path).</summary>
    public Task<IReadOnlyList<FeedState>> SnapshotAsync()
    {
        var tcs = new TaskCompletionSource<IReadOnlyList<FeedState>>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            var list = new List<FeedState>(_feeds.Count);
            foreach (var feed in _feeds.Values)
            {
                long high = 0, next = 0;
                for (var p = 0; p < feed.Next.Length; p++)
                {
                    next += feed.Next[p];
                    try
                    {
                        var wm = _consumer.GetWatermarkOffsets(new TopicPartition(feed.KafkaTopic, p));
                        if (wm.High == Offset.Unset) high = -1;
                        else if (high >= 0) high += wm.High.Value;
                    }
                    catch (KafkaException) { high = -1; /* not known yet */ }
                }
                list.Add(new FeedState(feed.Topic, feed.KafkaTopic, feed.Subscribers.Count, next, high, feed.Next.Length));
            }
            tcs.TrySetResult(list);
        }, () => tcs.TrySetResult([]));
        return tcs.Task;
    }

    private void Post(Action run, Action abort)
    {
        if (_stop.IsCancellationRequested) abort();
        else _commands.Enqueue((run, abort));
    }

    private void Run()
    {
        var poll = TimeSpan.FromMilliseconds(20);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                while (_commands.TryDequeue(out var command)) command.Run();
                if (_feeds.Count == 0)
                {
                    // Nothing assigned: wait for a command without spinning the consumer.
                    _stop.Token.WaitHandle.WaitOne(poll);
                    continue;
                }
                var record = _consumer.Consume(poll);
                if (record is not null && !record.IsPartitionEOF) Dispatch(record);
                LingerCheck();
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
        var partition = record.Partition.Value;
        var offset = record.Offset.Value;
        var position = feed.Next;
        if (partition >= position.Length || offset < position[partition]) return; // already delivered (cannot happen with one reader; cheap guard)
        position[partition] = offset + 1;
        if (_outageSince != 0) LogRecovered(record);
        var members = feed.Subscribers;
        if (members.Count == 0) return;
        // Encoded at most once per record and variant (with or without headers), and only when
        // some subscriber takes it; a record without visible headers has one variant. Only a
        // subscriber ahead of the feed (rare, brief) gets a frame of its own.
        string? pos = null;
        byte[]? frame = null, withHeaders = null;
        var delivered = 0;
        for (var i = members.Count - 1; i >= 0; i--)
        {
            var m = members[i];
            var own = false;
            if (m.Ahead is { } ahead)
            {
                if (offset < ahead[partition]) continue; // its catch-up read delivered it
                ahead[partition] = offset + 1;
                if (ahead.AsSpan().SequenceEqual(position)) m.Ahead = null; // in step with the feed from now on
                else own = true;
            }
            if (m.KeyFilter is { } key && !RecordFrames.KeyEquals(record, key)) continue;
            byte[] f;
            if (own) f = RecordFrames.Build(feed.Topic, record, Position.Encode(m.Ahead), m.WithHeaders);
            else
            {
                pos ??= Position.Encode(position);
                f = m.WithHeaders
                    ? withHeaders ??= RecordFrames.HasVisibleHeaders(record) ? RecordFrames.Build(feed.Topic, record, pos, withHeaders: true) : frame ??= RecordFrames.Build(feed.Topic, record, pos)
                    : frame ??= RecordFrames.Build(feed.Topic, record, pos);
            }
            if (m.Subscriber.TryDeliver(f)) delivered++;
            else members.RemoveAt(i);
        }
        _metrics.MessagesDelivered(delivered);
        var produced = record.Message.Timestamp;
        if (produced.Type != TimestampType.NotAvailable)
            _metrics.DeliveryLatency.Observe((DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - produced.UnixTimestampMs) / 1000.0);
        if (members.Count == 0) feed.EmptySince = Stopwatch.GetTimestamp();
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
        if (!_feeds.TryGetValue(kafkaTopic, out var feed) || partition >= feed.Next.Length) return;
        var tp = new TopicPartition(kafkaTopic, partition);
        long low = 0, high = long.MaxValue;
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
        var members = feed.Subscribers;
        var lost = 0;
        for (var i = members.Count - 1; i >= 0; i--)
        {
            var m = members[i];
            var at = m.Ahead is { } a ? a[partition] : feed.Next[partition];
            if (at >= low && at <= high) continue;
            members.RemoveAt(i);
            m.Subscriber.Lost();
            lost++;
        }
        _logger.LogWarning("Feed {Topic}: partition {Partition} no longer holds offset {Offset} (retained {Low}..{High}); {Lost} subscriber(s) would miss records and were closed to resume",
            feed.Topic, partition, feed.Next[partition], low, high, lost);
        // Go on from the oldest retained record; or, if the log holds the feed's offset again (it
        // answered differently a moment later), from there: in-step subscribers must not get a
        // record twice.
        var next = feed.Next[partition] >= low && feed.Next[partition] <= high ? feed.Next[partition] : low;
        feed.Next[partition] = next;
        if (members.Count == 0) feed.EmptySince = Stopwatch.GetTimestamp();
        // After the reset error the partition stops fetching (a seek is refused): assign it anew.
        _consumer.IncrementalUnassign([tp]);
        _consumer.IncrementalAssign([new TopicPartitionOffset(tp, next)]);
    }

    private void LingerCheck()
    {
        var now = Stopwatch.GetTimestamp();
        if (Stopwatch.GetElapsedTime(_lastLingerCheck, now) < TimeSpan.FromSeconds(1)) return;
        _lastLingerCheck = now;
        List<TopicPartition>? drop = null;
        foreach (var feed in _feeds.Values)
        {
            if (feed.Subscribers.Count > 0) continue;
            if (feed.EmptySince == 0) feed.EmptySince = now;
            else if (Stopwatch.GetElapsedTime(feed.EmptySince, now) >= _settings.FeedLinger)
            {
                drop ??= [];
                for (var p = 0; p < feed.Next.Length; p++) drop.Add(new TopicPartition(feed.KafkaTopic, p));
            }
        }
        if (drop is null) return;
        _consumer.IncrementalUnassign(drop);
        foreach (var tp in drop) _feeds.Remove(tp.Topic);
        _activeFeeds = _feeds.Count;
    }

    // The error handler runs inside Consume(), on the feed thread, like Dispatch.
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
        _thread.Join(TimeSpan.FromSeconds(5));
        try { _consumer.Close(); } catch (KafkaException) { }
        _consumer.Dispose();
        while (_commands.TryDequeue(out var c)) c.Abort();
    }

    private sealed class Feed(string kafkaTopic, string topic, long[] next)
    {
        public readonly string KafkaTopic = kafkaTopic;
        public readonly string Topic = topic;
        public readonly List<Member> Subscribers = [];
        /// <summary>Per partition, the offset of the next record this feed will deliver.</summary>
        public long[] Next = next;
        public long EmptySince;

        public void Remove(IFeedSubscriber s)
        {
            for (var i = 0; i < Subscribers.Count; i++)
            {
                if (!ReferenceEquals(Subscribers[i].Subscriber, s)) continue;
                Subscribers.RemoveAt(i);
                if (Subscribers.Count == 0) EmptySince = Stopwatch.GetTimestamp();
                return;
            }
        }
    }

    private sealed class Member(IFeedSubscriber subscriber, long[]? ahead, byte[]? keyFilter, bool withHeaders)
    {
        public readonly IFeedSubscriber Subscriber = subscriber;
        public readonly byte[]? KeyFilter = keyFilter;
        public readonly bool WithHeaders = withHeaders;

        /// <summary>
        /// Null while the subscriber is in step with the feed (its position is the feed's). Else its
        /// own position: ahead of the feed's in some partition, never behind it.
        /// </summary>
        public long[]? Ahead = ahead;

        public void Widen(int partitions)
        {
            if (Ahead is { } a && a.Length < partitions) Ahead = Widened(a, partitions);
        }
    }
}
