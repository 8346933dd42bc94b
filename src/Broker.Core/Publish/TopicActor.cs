using System.Diagnostics;
using System.Text;
using Akka.Actor;
using Akka.Event;
using Broker.Core.Log;
using Broker.Core.Replay;
using Broker.Core.Topics;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Publish;

/// <summary>What a topic actor uses of its node.</summary>
public sealed record TopicDependencies(KafkaLog Log, CatchUpReader Reader, TopicSettings Settings)
{
    /// <summary>The region of <see cref="TopicSettingsActor"/>s (run-time settings such as read-only); none: defaults.</summary>
    public IActorRef? SettingsRegion { get; init; }

    /// <summary>
    /// The node's feeds: a topic of a multiplexed namespace finds its own records in the log's tail
    /// through their offset index instead of reading the whole tail of the shared partition; none: it reads.
    /// </summary>
    public Fanout.FeedHub? Feeds { get; init; }
}

/// <summary>
/// The sharded actor of one topic: the single writer of client publishes to the topic's Kafka
/// topic. On start it makes sure the Kafka topic exists and reads the log's tail back into its
/// <see cref="PublishLedger{TPending}"/> (client and request id travel in record headers), so a
/// retried publish is written once even after the actor moved to another node. It produces with
/// the node's idempotent producer (acks=all) and answers <see cref="TopicCommands.PublishAck"/>
/// only once Kafka confirmed the record. Publishes are pipelined: the idempotent producer keeps
/// order.
/// <para>
/// Every answer is true. A publish is handed to Kafka only if Kafka's answer (which librdkafka
/// gives within produce-timeout) can reach the client before its deadline; later ones are refused
/// without being written. A refusal from Kafka that says the record was not written is answered
/// <c>unavailable</c>; a timeout after the record was sent leaves its fate unknown, so the ledger
/// keeps it as uncertain and the actor reads the log back (at once, and every second while any
/// remain) to settle it: a retry waits for that and then gets the ack of the record found, or —
/// once the record can no longer arrive (see <see cref="PublishLedger{TPending}"/>) — is written.
/// A reused (client, id) with other data or key gets <c>conflict</c>.
/// </para>
/// <para>
/// Sharding stops the actor with <see cref="Stop"/> (hand-off, passivation): it refuses new
/// publishes and stops once Kafka answered every record it sent, so the next writer, which reads
/// the log back, sees them all.
/// </para>
/// </summary>
public sealed class TopicActor : ReceiveActor, IWithStash, IWithTimers
{
    /// <summary>The message sharding stops topic actors with (hand-off and passivation): stop once nothing is in flight.</summary>
    public sealed class Stop
    {
        public static readonly Stop Instance = new();
        private Stop() { }
    }

    private readonly string _topic;
    private readonly string _kafkaTopic;
    private readonly Broker.Core.Settings.TopicMapping? _mapping;
    private readonly TopicDependencies _deps;
    private readonly PublishLedger<Pending> _ledger;
    private readonly long _minimumRemainingMs;
    private readonly ILoggingAdapter _logger = Context.GetLogger();
    private readonly long _started = Stopwatch.GetTimestamp();
    /// <summary>Per partition, the next offset as far as this actor knows (for the positions of its acks).</summary>
    private long[] _heads = [0];
    private int _producing;
    /// <summary>Records produced so far (numbers the records, for the ledger's fences).</summary>
    private long _produced;
    /// <summary>Since when (ms, <see cref="Environment.TickCount64"/>) the log has answered every settlement read; null after one failed.</summary>
    private long? _answeringSince;
    /// <summary>When the current (or last) settlement began to read the log back (Environment.TickCount64).</summary>
    private long _settleBegan;
    /// <summary>While stopping: the time (Environment.TickCount64) after which it stops even with publishes still unsettled.</summary>
    private long _stopBy;
    private bool _stopping, _settling, _settleFailing, _readOnly, _settingsKnown, _recovered;

    public IStash Stash { get; set; } = null!;

    public ITimerScheduler Timers { get; set; } = null!;

    public TopicActor(string topic, TopicDependencies deps)
    {
        _topic = topic;
        _deps = deps;
        _mapping = deps.Log.Settings.Resolve(topic);
        _kafkaTopic = _mapping?.KafkaTopic ?? deps.Log.Settings.KafkaTopicFor(topic);
        _ledger = new PublishLedger<Pending>(deps.Settings.DedupWindow);
        _minimumRemainingMs = (long)(deps.Log.Settings.ProduceTimeout + deps.Settings.AnswerMargin).TotalMilliseconds;
        Initializing();
    }

    public static Props Props(string topic, TopicDependencies deps) => Akka.Actor.Props.Create(() => new TopicActor(topic, deps));

    protected override void PreStart()
    {
        Start();
        AskSettings();
    }

    protected override void PostStop()
    {
        // Whatever still waits has no answer here; the next writer reads the log back and settles it.
        foreach (var w in _ledger.Abandon()) w.ReplyTo.Tell(Uncertain());
    }

    /// <summary>Run-time settings come from the settings store; while it cannot answer the defaults apply and it is asked again.</summary>
    private void AskSettings()
    {
        if (_deps.SettingsRegion is null)
        {
            _settingsKnown = true; // no settings store: defaults
            return;
        }
        _deps.SettingsRegion.Ask<TopicSettingsCommands.Current>(new TopicSettingsCommands.Get(_topic), _deps.Settings.SettingsTimeout)
            .PipeTo(Self, failure: e => new SettingsUnavailable(e));
    }

    private void TryBecomeReady()
    {
        if (!_recovered || !_settingsKnown) return;
        Become(Ready);
        Stash.UnstashAll();
    }

    private void SettingsFailed(SettingsUnavailable u)
    {
        _logger.Warning("Topic {0}: settings store unavailable ({1}); defaults apply until it answers", _topic, u.Cause.GetBaseException().Message);
        Timers.StartSingleTimer("settings", RetrySettings.Instance, _deps.Settings.SettingsRetry);
    }

    private void SettingsMessages()
    {
        Receive<TopicSettingsCommands.Current>(c => _readOnly = c.ReadOnly);
        Receive<SettingsUnavailable>(SettingsFailed);
        Receive<RetrySettings>(_ => AskSettings());
    }

    private void Start() => Recover().PipeTo(Self, success: t => new TopicReady(t), failure: e => new TopicFailed(e));

    /// <summary>Ensures the Kafka topic and reads the tail of the log (see <see cref="ReadTailAsync"/>).</summary>
    private async Task<Tail> Recover()
    {
        var started = Stopwatch.GetTimestamp();
        if (_mapping is not null) await _deps.Log.EnsureTopicAsync(_mapping).ConfigureAwait(false);
        else await _deps.Log.EnsureTopicAsync(_kafkaTopic).ConfigureAwait(false);
        var ensured = Stopwatch.GetElapsedTime(started);
        return await ReadTailAsync().ConfigureAwait(false) with { EnsureTime = ensured };
    }

    /// <summary>
    /// The client publishes among the last <c>dedup-window</c> records of each partition (with the
    /// fingerprint of each record's value and key and the position its ack had), and the heads of
    /// the partitions when the read started.
    /// </summary>
    private async Task<Tail> ReadTailAsync()
    {
        if (_mapping is { Multiplexed: true } shared) return await ReadSharedTailAsync(shared.SharedPartition).ConfigureAwait(false);
        var started = Stopwatch.GetTimestamp();
        var heads = await _deps.Log.QueryHeadsAsync(_kafkaTopic).ConfigureAwait(false);
        var queried = Stopwatch.GetElapsedTime(started);
        var found = new List<LoggedPublish>();
        if (_deps.Settings.DedupWindow <= 0) return new Tail(found, heads.High) { HeadsTime = queried };
        var from = new long[heads.Partitions];
        for (var p = 0; p < from.Length; p++) from[p] = Math.Max(heads.Low[p], heads.High[p] - _deps.Settings.DedupWindow);
        using var cts = new CancellationTokenSource(_deps.Settings.RecoveryTimeout);
        var ackPosition = (long[])from.Clone();
        await _deps.Reader.ReadRecordsAsync(_kafkaTopic, from, heads.High, (record, _) =>
        {
            // The original ack's position in the record's own partition; in the others the start of
            // this read, which never claims more than was written before the record (resuming from
            // it may repeat, never skip). One partition: exactly the original ack's position.
            if (PublishIdentity(record.Message.Headers) is var (client, id))
            {
                var partition = record.Partition.Value;
                ackPosition[partition] = record.Offset.Value + 1;
                found.Add(new LoggedPublish(new PublishKey(_topic, client, id),
                    PublishFingerprint.Of(record.Message.Value, record.Message.Key), Position.Encode(ackPosition)));
                ackPosition[partition] = from[partition];
            }
            return ValueTask.CompletedTask;
        }, cts.Token).ConfigureAwait(false);
        return new Tail(found, heads.High) { HeadsTime = queried, ReadTime = Stopwatch.GetElapsedTime(started) - queried };
    }

    /// <summary>
    /// <see cref="ReadTailAsync"/> for a topic of a multiplexed namespace: its records are the ones
    /// keyed with its name among the last <c>dedup-window</c> records of its partition of the shared
    /// Kafka topic (the publish's own key is the <c>broker-key</c> header); positions are offsets of
    /// that partition.
    /// </summary>
    private async Task<Tail> ReadSharedTailAsync(int partition)
    {
        var started = Stopwatch.GetTimestamp();
        var wm = await _deps.Log.QueryWatermarksAsync(_kafkaTopic, partition).ConfigureAwait(false);
        var queried = Stopwatch.GetElapsedTime(started);
        var low = Math.Max(0, wm.Low.Value);
        var high = Math.Max(low, wm.High.Value);
        var found = new List<LoggedPublish>();
        if (_deps.Settings.DedupWindow <= 0) return new Tail(found, [high]) { HeadsTime = queried };
        var from = new long[partition + 1];
        var to = new long[partition + 1];
        from[partition] = Math.Max(low, high - _deps.Settings.DedupWindow);
        to[partition] = high;
        var name = Encoding.UTF8.GetBytes(_topic);
        using var cts = new CancellationTokenSource(_deps.Settings.RecoveryTimeout);
        RecordHandler keep = (record, _) =>
        {
            if (record.Message.Key is { } k && k.AsSpan().SequenceEqual(name) && PublishIdentity(record.Message.Headers) is var (client, id))
                found.Add(new LoggedPublish(new PublishKey(_topic, client, id),
                    PublishFingerprint.Of(record.Message.Value, HeaderBytes(record.Message.Headers, KafkaLog.KeyHeader)),
                    Position.Encode([record.Offset.Value + 1])));
            return ValueTask.CompletedTask;
        };
        if (await OwnRecordsAsync(partition, from[partition], high, cts.Token).ConfigureAwait(false) is { } own)
        {
            // Only the topic's own records (usually none: a new topic's writer reads nothing).
            foreach (var (first, end) in own)
            {
                from[partition] = first;
                to[partition] = end;
                await _deps.Reader.ReadRecordsAsync(_kafkaTopic, from, to, keep, cts.Token).ConfigureAwait(false);
            }
            return new Tail(found, [high]) { HeadsTime = queried, ReadTime = Stopwatch.GetElapsedTime(started) - queried, Indexed = true };
        }
        await _deps.Reader.ReadRecordsAsync(_kafkaTopic, from, to, keep, cts.Token).ConfigureAwait(false);
        return new Tail(found, [high]) { HeadsTime = queried, ReadTime = Stopwatch.GetElapsedTime(started) - queried };
    }

    /// <summary>
    /// The ranges of <paramref name="partition"/> in [<paramref name="from"/>, <paramref name="to"/>)
    /// that hold the topic's records, from the node's offset index; null when the index cannot tell
    /// exactly (off, behind the log for longer than its catch-up wait, or the topic has more records
    /// there than it keeps): then the whole range is read.
    /// </summary>
    private async Task<List<(long From, long To)>?> OwnRecordsAsync(int partition, long from, long to, CancellationToken ct)
    {
        if (_deps.Feeds is not { } feeds || from >= to) return null; // nothing to ask (an empty range reads nothing either way)
        var answer = await feeds.LastOffsetsAsync(_kafkaTopic, _topic, partition, int.MaxValue, from, to, ct).ConfigureAwait(false);
        if (answer.Outcome != Fanout.IndexLookup.Found) return null;
        var offsets = new List<long>(answer.Offsets.Length);
        foreach (var offset in answer.Offsets)
            if (offset >= from && offset < to) offsets.Add(offset);
        return Fanout.OffsetIndex.Coalesce(offsets, feeds.IndexSettings.CoalesceGap);
    }

    private static byte[]? HeaderBytes(Headers? headers, string key)
    {
        if (headers is null) return null;
        for (var i = 0; i < headers.Count; i++)
            if (headers[i].Key == key) return headers[i].GetValueBytes();
        return null;
    }

    private static (string, string)? PublishIdentity(Headers? headers)
    {
        if (headers is null) return null;
        string? client = null, id = null;
        for (var i = 0; i < headers.Count; i++)
        {
            var h = headers[i];
            if (h.Key == KafkaLog.ClientHeader) client = Encoding.UTF8.GetString(h.GetValueBytes());
            else if (h.Key == KafkaLog.RequestIdHeader) id = Encoding.UTF8.GetString(h.GetValueBytes());
        }
        return client is not null && id is not null ? (client, id) : null;
    }

    private void Initializing()
    {
        // Publishes wait until the log is recovered and the settings are known (or their store
        // failed to answer), so that a read-only topic never takes a publish while starting.
        Receive<TopicSettingsCommands.Current>(c =>
        {
            _readOnly = c.ReadOnly;
            _settingsKnown = true;
            TryBecomeReady();
        });
        Receive<SettingsUnavailable>(u =>
        {
            _settingsKnown = true;
            SettingsFailed(u);
            TryBecomeReady();
        });
        Receive<TopicReady>(ready =>
        {
            foreach (var found in ready.Tail.Found) _ledger.Observe(found.Key, found.Fingerprint, found.Pos);
            _heads = ready.Tail.Heads;
            var tail = ready.Tail;
            _logger.Info("Topic {0} ready on {1} in {2:0} ms ({3} recent publishes recovered from the log; topic ensured in {4:0} ms, heads in {5:0} ms, tail read in {6:0} ms{7})",
                [_topic, ((ExtendedActorSystem)Context.System).Provider.DefaultAddress, Stopwatch.GetElapsedTime(_started).TotalMilliseconds, tail.Found.Count,
                    tail.EnsureTime.TotalMilliseconds, tail.HeadsTime.TotalMilliseconds, tail.ReadTime.TotalMilliseconds, tail.Indexed ? ", its own records found through the offset index" : ""]);
            _recovered = true;
            TryBecomeReady();
        });
        Receive<TopicFailed>(f =>
        {
            _logger.Warning("Topic {0}: the log is unavailable ({1}); publishes are refused until it returns", _topic, f.Cause.GetBaseException().Message);
            Stash.UnstashAll();
            Become(Failed);
        });
        // Nothing was written yet: stopping loses nothing (stashed publishes time out, unwritten).
        Receive<Stop>(_ => Context.Stop(Self));
        ReceiveAny(_ => Stash.Stash());
    }

    private void Failed()
    {
        SettingsMessages();
        Receive<Stop>(_ => Context.Stop(Self));
        Receive<TopicCommands.Publish>(_ =>
        {
            Sender.Tell(Refused(ErrorCodes.Unavailable, "the log is unavailable; nothing was written; retry"));
            // Try again; publishes that arrive meanwhile wait for the outcome.
            Become(Initializing);
            Start();
        });
    }

    private void Ready()
    {
        SettingsMessages();
        Receive<TopicCommands.Publish>(p => Admit(new Pending(p, Sender)));
        Receive<Produced>(OnProduced);
        Receive<Settled>(OnSettled);
        Receive<SettleFailed>(f =>
        {
            _settling = false;
            if (!_settleFailing)
                _logger.Warning("Topic {0}: the log could not be read back to settle {1} publishes whose outcome is unknown ({2}); retrying every {3}",
                    _topic, _ledger.UncertainCount, f.Cause.GetBaseException().Message, _deps.Settings.SettleRetry);
            _settleFailing = true;
            _answeringSince = null;
            foreach (var w in _ledger.SettlementFailed()) w.ReplyTo.Tell(Uncertain());
            Timers.StartSingleTimer("settle", SettleAgain.Instance, _deps.Settings.SettleRetry);
            StopWhenIdle(settle: false);
        });
        Receive<SettleAgain>(_ => Settle());
        Receive<Stop>(_ =>
        {
            _stopping = true;
            _stopBy = Environment.TickCount64 + 2 * (long)_deps.Log.Settings.ProduceTimeout.TotalMilliseconds;
            StopWhenIdle();
        });
    }

    private void Admit(Pending pending)
    {
        var p = pending.Request;
        if (_readOnly)
        {
            pending.ReplyTo.Tell(Refused(ErrorCodes.Forbidden, "the topic is read-only"));
            return;
        }
        if (_stopping)
        {
            pending.ReplyTo.Tell(Refused(ErrorCodes.Unavailable, "the topic's writer is moving to another node; nothing was written; retry"));
            return;
        }
        PublishKey? key = p is { ClientId: { } client, RequestId: { } id } ? new PublishKey(_topic, client, id) : null;
        var fingerprint = key is null ? 0 : PublishFingerprint.Of(p.Data, p.Key);
        var inTime = p.DeadlineUnixMs == 0 || p.DeadlineUnixMs - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() >= _minimumRemainingMs;
        switch (_ledger.Admit(key, fingerprint, pending, inTime, out var pos))
        {
            case Admission.Produce:
                Produce(pending, key);
                break;
            case Admission.Duplicate:
                pending.ReplyTo.Tell(new TopicCommands.PublishAck(_topic, pos!, Duplicate: true));
                break;
            case Admission.Conflict:
                pending.ReplyTo.Tell(ConflictRefusal(key!.Value));
                break;
            case Admission.Waiting:
                // A retry of a publish being written waits for its outcome; one whose outcome is
                // unknown waits for the log to be read back.
                if (_ledger.RetryWaitsForSettlement) Settle();
                break;
            case Admission.TooLate:
                pending.ReplyTo.Tell(Refused(ErrorCodes.Unavailable, "the publish reached the topic's writer too late to be answered in time; nothing was written; retry"));
                break;
        }
    }

    private void Produce(Pending pending, PublishKey? key)
    {
        var p = pending.Request;
        var self = Self;
        var number = ++_produced;
        _producing++;
        try
        {
            // Delivery reports come on the producer's poll thread in write order per partition, so
            // the Produced messages (and the acks) keep the order of the publishes of a partition
            // (of the topic, with one partition).
            void Delivered(DeliveryReport<byte[]?, byte[]?> report) => self.Tell(
                new Produced(pending, key, number, report.Partition.Value, report.Offset.Value,
                    report.Error.IsError ? new ProduceException<byte[]?, byte[]?>(report.Error, report) : null, report.Status));
            if (_mapping is { Multiplexed: true } shared)
                _deps.Log.ProduceShared(_kafkaTopic, shared.SharedPartition, _topic, p.Key, p.Data, p.ClientId, p.RequestId, Delivered);
            else _deps.Log.Produce(_kafkaTopic, p.Key, p.Data, p.ClientId, p.RequestId, Delivered);
        }
        catch (KafkaException e)
        {
            // Not even queued (e.g. the producer queue is full): not written.
            Self.Tell(new Produced(pending, key, number, -1, -1, e, PersistenceStatus.NotPersisted));
        }
    }

    private void OnProduced(Produced done)
    {
        _producing--;
        if (done.Error is null)
        {
            _ledger.Acknowledged(done.Partition, done.Number);
            var ack = new TopicCommands.PublishAck(_topic, AckPosition(done.Partition, done.Offset));
            if (done.Key is { } key)
            {
                var waiting = _ledger.Written(key, ack.Pos);
                for (var i = 0; i < waiting.Count; i++) waiting[i].ReplyTo.Tell(i == 0 ? ack : ack with { Duplicate = true });
            }
            else done.Pending.ReplyTo.Tell(ack);
        }
        else if (done.Status == PersistenceStatus.PossiblyPersisted)
        {
            // Sent, but Kafka did not answer in time: the record may be in the log. Nobody is told
            // `unavailable` as if it were not; the log is read back to find out.
            if (done.Key is { } key)
            {
                _ledger.PossiblyWritten(key, done.Partition, _produced, Environment.TickCount64);
                Settle();
            }
            else done.Pending.ReplyTo.Tell(Uncertain());
        }
        else
        {
            var refusal = Rejection(done.Error);
            if (done.Key is { } key)
                foreach (var w in _ledger.NotWritten(key)) w.ReplyTo.Tell(refusal);
            else done.Pending.ReplyTo.Tell(refusal);
        }
        StopWhenIdle();
    }

    /// <summary>Reads the log's tail back to settle the publishes whose outcome is unknown (one read at a time).</summary>
    private void Settle()
    {
        if (_settling || _ledger.UncertainCount == 0) return;
        _settling = true;
        _settleBegan = Environment.TickCount64;
        var generation = _ledger.BeginSettlement();
        ReadTailAsync().PipeTo(Self, success: t => new Settled(generation, t), failure: e => new SettleFailed(e));
    }

    private void OnSettled(Settled settled)
    {
        _settling = false;
        var uncertain = _ledger.UncertainCount;
        foreach (var logged in settled.Tail.Found)
        {
            var observed = _ledger.Observe(logged.Key, logged.Fingerprint, logged.Pos);
            foreach (var w in observed.Waiting ?? [])
                w.ReplyTo.Tell(observed.Conflict ? ConflictRefusal(logged.Key) : new TopicCommands.PublishAck(_topic, logged.Pos, Duplicate: true));
        }
        var inLog = uncertain - _ledger.UncertainCount;
        for (var p = 0; p < settled.Tail.Heads.Length; p++)
        {
            if (p >= _heads.Length) Array.Resize(ref _heads, p + 1);
            _heads[p] = Math.Max(_heads[p], settled.Tail.Heads[p]);
        }
        // Not found in the log, and no longer on its way there: not written. Their waiting
        // publishes (the original, if its client still waits, and retries) are admitted again:
        // written now if there is still time. What may still be on its way waits for a fence or
        // for the log to have answered for produce-timeout.
        // Judged as of when the read began: it covers the log only up to the end it found then.
        _answeringSince ??= _settleBegan;
        var again = _ledger.EndSettlement(settled.Generation, _answeringSince.Value, _settleBegan, (long)_deps.Log.Settings.ProduceTimeout.TotalMilliseconds);
        _settleFailing = false;
        var notWritten = uncertain - inLog - _ledger.UncertainCount;
        if (inLog + notWritten > 0)
            _logger.Info("Topic {0}: read the log back to settle publishes whose outcome was unknown: {1} in the log, {2} not written, {3} still unknown ({4} waiting publishes admitted again)",
                _topic, inLog, notWritten, _ledger.UncertainCount, again.Count);
        foreach (var pending in again) Admit(pending);
        if (_ledger.UncertainCount > 0) Timers.StartSingleTimer("settle", SettleAgain.Instance, _deps.Settings.SettleRetry);
        StopWhenIdle(settle: false);
    }

    /// <summary>
    /// Stops once Kafka answered every record sent and every publish whose outcome was unknown is
    /// settled: the next writer knows only what it reads from the log, and a record still on its way
    /// there (the log stalled) could arrive after its read and be written again by a retry. A log that
    /// stays unreadable holds the stop at most twice produce-timeout (within sharding's hand-off timeout).
    /// </summary>
    private void StopWhenIdle(bool settle = true)
    {
        if (!_stopping || _producing > 0) return;
        if (_ledger.UncertainCount > 0)
        {
            if (Environment.TickCount64 < _stopBy)
            {
                if (settle) Settle(); // afterwards the settle timer retries every second
                return;
            }
            _logger.Warning("Topic {0}: stopping with {1} publishes whose outcome is still unknown (the log could not be read back to settle them)",
                _topic, _ledger.UncertainCount);
        }
        Context.Stop(Self);
    }

    /// <summary>
    /// The position of a record this actor wrote: its offset + 1 in its partition and, in the other
    /// partitions, how far this actor knows the log to be (its start-up heads and its own writes).
    /// One partition: simply the record's position.
    /// </summary>
    private string AckPosition(int partition, long offset)
    {
        if (_mapping is { Multiplexed: true }) return Position.Encode([offset + 1]); // one offset of the topic's partition
        if (partition >= _heads.Length) Array.Resize(ref _heads, partition + 1); // partitions were added
        if (offset + 1 > _heads[partition]) _heads[partition] = offset + 1;
        if (_heads.Length == 1) return Position.Encode([offset + 1]);
        var position = (long[])_heads.Clone();
        position[partition] = offset + 1;
        return Position.Encode(position);
    }

    private TopicCommands.PublishRejected Refused(string code, string message) => new(_topic, code, message);

    private TopicCommands.PublishRejected ConflictRefusal(PublishKey key) =>
        Refused(ErrorCodes.Conflict, $"id {key.Id} was already used by this client for a message with other data or key; nothing was written");

    /// <summary>The answer when the outcome of a publish is not known here (yet): a resend with the same id settles it.</summary>
    private TopicCommands.PublishRejected Uncertain() =>
        Refused(ErrorCodes.Unavailable, "the log did not answer in time and may or may not have the message; resend it with the same id: it is written at most once");

    private TopicCommands.PublishRejected Rejection(Exception e) => e.GetBaseException() switch
    {
        ProduceException<byte[]?, byte[]?> { Error.Code: ErrorCode.MsgSizeTooLarge } =>
            Refused(ErrorCodes.TooLarge, "the message is larger than the log accepts"),
        KafkaException { Error.Code: ErrorCode.Local_QueueFull } =>
            Refused(ErrorCodes.Unavailable, "the node's producer queue is full; nothing was written; retry"),
        _ => Refused(ErrorCodes.Unavailable, "the log did not take the message in time; nothing was written; retry"),
    };

    /// <summary>A publish waiting for its answer: the request and where the answer goes.</summary>
    private sealed record Pending(TopicCommands.Publish Request, IActorRef ReplyTo);

    private sealed record Produced(Pending Pending, PublishKey? Key, long Number, int Partition, long Offset, Exception? Error, PersistenceStatus Status);

    private sealed record LoggedPublish(PublishKey Key, ulong Fingerprint, string Pos);

    /// <summary>What a read of the log's tail found, and how long its steps took (logged when a writer starts).</summary>
    private sealed record Tail(List<LoggedPublish> Found, long[] Heads)
    {
        public TimeSpan EnsureTime { get; init; }
        public TimeSpan HeadsTime { get; init; }
        public TimeSpan ReadTime { get; init; }
        /// <summary>Only the topic's own records were read (found through the offset index).</summary>
        public bool Indexed { get; init; }
    }

    private sealed record TopicReady(Tail Tail);

    private sealed record TopicFailed(Exception Cause);

    private sealed record Settled(long Generation, Tail Tail);

    private sealed record SettleFailed(Exception Cause);

    private sealed record SettingsUnavailable(Exception Cause);

    private sealed class RetrySettings
    {
        public static readonly RetrySettings Instance = new();
        private RetrySettings() { }
    }

    private sealed class SettleAgain
    {
        public static readonly SettleAgain Instance = new();
        private SettleAgain() { }
    }
}
