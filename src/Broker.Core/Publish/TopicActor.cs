using Broker.Core.Topics;
using Broker.Core.Connections;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using System.Text;
using Akka.Actor;
using Akka.Event;
using Broker.Core.Log;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Publish;

/// <summary>What a topic actor uses of its node.</summary>
public sealed record TopicDependencies(KafkaLog Log, CatchUpReader Reader, TopicSettings Settings)
{
    /// <summary>The region of <see cref="TopicSettingsActor"/>s (run-time settings such as read-only); none: defaults.</summary>
    public IActorRef? SettingsRegion { get; init; }
}

/// <summary>
/// The sharded actor of one topic: the single writer of client publishes to the topic's Kafka
/// topic. On start it makes sure the Kafka topic exists and rebuilds its window of recent
/// publishes from the log's tail (client and request id travel in record headers), so a retried
/// publish is written once even after the actor moved to another node. It produces with the
/// node's idempotent producer (acks=all) and answers <see cref="TopicCommands.PublishAck"/> only
/// once Kafka confirmed the record. Publishes are pipelined: the idempotent producer keeps order.
/// </summary>
public sealed class TopicActor : ReceiveActor, IWithStash, IWithTimers
{
    private readonly string _topic;
    private readonly string _kafkaTopic;
    private readonly Broker.Core.Settings.TopicMapping? _mapping;
    private readonly TopicDependencies _deps;
    private readonly DedupWindow _window;
    private readonly Dictionary<(string, string), List<IActorRef>> _inFlight = new();
    private readonly ILoggingAdapter _logger = Context.GetLogger();
    /// <summary>Per partition, the next offset as far as this actor knows (for the positions of its acks).</summary>
    private long[] _heads = [0];

    public IStash Stash { get; set; } = null!;

    public ITimerScheduler Timers { get; set; } = null!;

    public TopicActor(string topic, TopicDependencies deps)
    {
        _topic = topic;
        _deps = deps;
        _mapping = deps.Log.Settings.Resolve(topic);
        _kafkaTopic = _mapping?.KafkaTopic ?? deps.Log.Settings.KafkaTopicFor(topic);
        _window = new DedupWindow(deps.Settings.DedupWindow);
        Initializing();
    }

    public static Props Props(string topic, TopicDependencies deps) => Akka.Actor.Props.Create(() => new TopicActor(topic, deps));

    protected override void PreStart()
    {
        Start();
        AskSettings();
    }

    private bool _readOnly;

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

    private bool _settingsKnown, _recovered;

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

    private void Start() => Recover().PipeTo(Self, success: r => new TopicReady(r.Found, r.Heads), failure: e => new TopicFailed(e));

    /// <summary>
    /// Ensures the Kafka topic, reads the tail of the log back into the de-duplication window and
    /// returns the partitions' heads.
    /// </summary>
    private async Task<(List<(string Client, string Id, string Pos)> Found, long[] Heads)> Recover()
    {
        if (_mapping is not null) await _deps.Log.EnsureTopicAsync(_mapping).ConfigureAwait(false);
        else await _deps.Log.EnsureTopicAsync(_kafkaTopic).ConfigureAwait(false);
        if (_mapping is { Multiplexed: true }) return await RecoverShared(_mapping).ConfigureAwait(false);
        var heads = await _deps.Log.QueryHeadsAsync(_kafkaTopic).ConfigureAwait(false);
        var found = new List<(string Client, string Id, string Pos)>();
        if (_deps.Settings.DedupWindow <= 0) return (found, heads.High);
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
                found.Add((client, id, Position.Encode(ackPosition)));
                ackPosition[partition] = from[partition];
            }
            return ValueTask.CompletedTask;
        }, cts.Token).ConfigureAwait(false);
        return (found, heads.High);
    }

    /// <summary>
    /// A topic of a multiplexed namespace: its records are the ones keyed with its name in its
    /// partition of the shared Kafka topic; positions are offsets of that partition.
    /// </summary>
    private async Task<(List<(string Client, string Id, string Pos)> Found, long[] Heads)> RecoverShared(Broker.Core.Settings.TopicMapping mapping)
    {
        var partition = mapping.SharedPartition;
        var wm = await _deps.Log.QueryWatermarksAsync(_kafkaTopic, partition).ConfigureAwait(false);
        var low = Math.Max(0, wm.Low.Value);
        var high = Math.Max(low, wm.High.Value);
        var found = new List<(string Client, string Id, string Pos)>();
        if (_deps.Settings.DedupWindow <= 0) return (found, [high]);
        var from = new long[partition + 1];
        var to = new long[partition + 1];
        from[partition] = Math.Max(low, high - _deps.Settings.DedupWindow);
        to[partition] = high;
        var key = Encoding.UTF8.GetBytes(_topic);
        using var cts = new CancellationTokenSource(_deps.Log.Settings.QueryTimeout * 4);
        await _deps.Reader.ReadRecordsAsync(_kafkaTopic, from, to, (record, _) =>
        {
            if (record.Message.Key is { } k && k.AsSpan().SequenceEqual(key) && PublishIdentity(record.Message.Headers) is var (client, id))
                found.Add((client, id, Position.Encode([record.Offset.Value + 1])));
            return ValueTask.CompletedTask;
        }, cts.Token).ConfigureAwait(false);
        return (found, [high]);
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
            foreach (var (client, id, pos) in ready.Recovered) _window.Add(client, id, pos);
            _heads = ready.Heads;
            _logger.Info("Topic {0} ready on {1} ({2} recent publishes recovered from the log)", _topic, ((ExtendedActorSystem)Context.System).Provider.DefaultAddress, ready.Recovered.Count);
            _recovered = true;
            TryBecomeReady();
        });
        Receive<TopicFailed>(f =>
        {
            _logger.Warning("Topic {0}: the log is unavailable ({1}); publishes are refused until it returns", _topic, f.Cause.GetBaseException().Message);
            Stash.UnstashAll();
            Become(Failed);
        });
        ReceiveAny(_ => Stash.Stash());
    }

    private void Failed()
    {
        SettingsMessages();
        Receive<TopicCommands.Publish>(_ =>
        {
            Sender.Tell(new TopicCommands.PublishRejected(_topic, ErrorCodes.Unavailable, "the log is unavailable; retry"));
            // Try again; publishes that arrive meanwhile wait for the outcome.
            Become(Initializing);
            Start();
        });
    }

    private void Ready()
    {
        SettingsMessages();
        Receive<TopicCommands.Publish>(p =>
        {
            if (_readOnly)
            {
                Sender.Tell(new TopicCommands.PublishRejected(_topic, ErrorCodes.Forbidden, "the topic is read-only"));
                return;
            }
            if (p is { ClientId: { } client, RequestId: { } id })
            {
                if (_window.TryGet(client, id, out var pos))
                {
                    Sender.Tell(new TopicCommands.PublishAck(_topic, pos, Duplicate: true));
                    return;
                }
                if (_inFlight.TryGetValue((client, id), out var waiting))
                {
                    waiting.Add(Sender); // a retry of a publish still being written: answer both with one record
                    return;
                }
                _inFlight[(client, id)] = [Sender];
            }
            var replyTo = Sender;
            var self = Self;
            try
            {
                // Delivery reports come on the producer's poll thread in write order per partition,
                // so the Produced messages (and the acks) keep the order of the publishes of a
                // partition (of the topic, with one partition).
                void Delivered(DeliveryReport<byte[]?, byte[]?> report) => self.Tell(
                    report.Error.IsError
                        ? new Produced(p, replyTo, -1, -1, new ProduceException<byte[]?, byte[]?>(report.Error, report))
                        : new Produced(p, replyTo, report.Partition.Value, report.Offset.Value, null));
                if (_mapping is { Multiplexed: true } shared)
                    _deps.Log.ProduceShared(_kafkaTopic, shared.SharedPartition, _topic, p.Key, p.Data, p.ClientId, p.RequestId, Delivered);
                else _deps.Log.Produce(_kafkaTopic, p.Key, p.Data, p.ClientId, p.RequestId, Delivered);
            }
            catch (KafkaException e)
            {
                Self.Tell(new Produced(p, replyTo, -1, -1, e));
            }
        });
        Receive<Produced>(done =>
        {
            object reply = done.Error is null ? new TopicCommands.PublishAck(_topic, AckPosition(done.Partition, done.Offset)) : Rejection(_topic, done.Error);
            if (done.Request is { ClientId: { } client, RequestId: { } id })
            {
                if (reply is TopicCommands.PublishAck ack) _window.Add(client, id, ack.Pos);
                if (_inFlight.Remove((client, id), out var waiting))
                {
                    foreach (var w in waiting) w.Tell(reply);
                    return;
                }
            }
            done.ReplyTo.Tell(reply);
        });
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

    private static TopicCommands.PublishRejected Rejection(string topic, Exception e) => e.GetBaseException() switch
    {
        ProduceException<byte[]?, byte[]?> { Error.Code: ErrorCode.MsgSizeTooLarge } =>
            new(topic, ErrorCodes.TooLarge, "the message is larger than the log accepts"),
        _ => new(topic, ErrorCodes.Unavailable, "the log did not acknowledge the message in time; retry"),
    };

    private sealed record Produced(TopicCommands.Publish Request, IActorRef ReplyTo, int Partition, long Offset, Exception? Error);

    private sealed record SettingsUnavailable(Exception Cause);

    private sealed class RetrySettings
    {
        public static readonly RetrySettings Instance = new();
        private RetrySettings() { }
    }

    private sealed record TopicReady(List<(string Client, string Id, string Pos)> Recovered, long[] Heads);

    private sealed record TopicFailed(Exception Cause);
}
