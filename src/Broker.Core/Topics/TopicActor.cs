using Akka.Actor;
using Akka.Event;
using Broker.Core.Log;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Topics;

/// <summary>
/// The sharded actor of one topic: the single writer of client publishes to the topic's Kafka
/// topic. It makes sure the Kafka topic exists, produces with the node's idempotent producer
/// (acks=all) and answers <see cref="TopicCommands.PublishAck"/> only once Kafka confirmed the
/// record. Publishes are pipelined: order is kept by the idempotent producer, and acks
/// are sent in the same order (delivery reports come in produce order).
/// </summary>
public sealed class TopicActor : ReceiveActor, IWithStash
{
    private readonly string _topic;
    private readonly string _kafkaTopic;
    private readonly KafkaLog _log;
    private readonly ILoggingAdapter _logger = Context.GetLogger();

    public IStash Stash { get; set; } = null!;

    public TopicActor(string topic, KafkaLog log)
    {
        _topic = topic;
        _kafkaTopic = log.Settings.KafkaTopicFor(topic);
        _log = log;
        Initializing();
    }

    public static Props Props(string topic, KafkaLog log) => Akka.Actor.Props.Create(() => new TopicActor(topic, log));

    protected override void PreStart() => EnsureTopic();

    private void EnsureTopic() =>
        _log.EnsureTopicAsync(_kafkaTopic).PipeTo(Self, success: () => TopicReady.Instance, failure: e => new TopicFailed(e));

    private void Initializing()
    {
        Receive<TopicReady>(_ =>
        {
            Become(Ready);
            Stash.UnstashAll();
        });
        Receive<TopicFailed>(f =>
        {
            _logger.Warning("Cannot create Kafka topic {0}: {1}", _kafkaTopic, f.Cause.Message);
            // Answer what waits, then try again on the next publish.
            Stash.UnstashAll();
            Become(Failed);
        });
        ReceiveAny(_ => Stash.Stash());
    }

    private void Failed()
    {
        Receive<TopicCommands.Publish>(p =>
        {
            Sender.Tell(new TopicCommands.PublishRejected(_topic, ErrorCodes.Unavailable, "the log is unavailable; retry"));
            Become(Initializing);
            EnsureTopic();
        });
    }

    private void Ready()
    {
        Receive<TopicCommands.Publish>(p =>
        {
            var replyTo = Sender;
            var topic = _topic;
            try
            {
                // Delivery reports arrive in produce order on one thread, so acks keep the publish order.
                _log.Produce(_kafkaTopic, p.Key, p.Data, report => replyTo.Tell(report.Error.IsError
                    ? Rejection(topic, report.Error.Code)
                    : new TopicCommands.PublishAck(topic, Position.Single(report.Offset.Value + 1).Encode())));
            }
            catch (KafkaException e)
            {
                replyTo.Tell(Rejection(topic, e.Error.Code));
            }
        });
    }

    private static TopicCommands.PublishRejected Rejection(string topic, ErrorCode code) => code switch
    {
        ErrorCode.MsgSizeTooLarge =>
            new(topic, ErrorCodes.TooLarge, "the message is larger than the log accepts"),
        _ => new(topic, ErrorCodes.Unavailable, "the log did not acknowledge the message in time; retry"),
    };

    private sealed class TopicReady
    {
        public static readonly TopicReady Instance = new();
        private TopicReady() { }
    }

    private sealed record TopicFailed(Exception Cause);
}
