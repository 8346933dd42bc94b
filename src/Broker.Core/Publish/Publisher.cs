using System.Diagnostics;
using Akka.Actor;
using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.Core.Topics;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Publish;

/// <summary>The outcome of a publish: acknowledged at <see cref="Pos"/>, or refused with a protocol error.</summary>
public readonly record struct PublishOutcome(string? Pos, ProtocolError Error, bool Duplicate = false)
{
    public bool Acked => Pos is not null;

    public static PublishOutcome Refused(string code, string message) => new(null, new ProtocolError(code, message));
}

/// <summary>
/// Sends a client publish to its topic's writer (the sharded <see cref="TopicActor"/>, on whichever
/// node it lives) and turns what comes back into a <see cref="PublishOutcome"/>. Used by WebSocket
/// connections and by HTTP publish alike; it holds no per-request state.
/// </summary>
public sealed class Publisher(KafkaLog log, IActorRef topics, TimeSpan requestTimeout, Metrics.BrokerMetrics metrics)
{
    public async Task<PublishOutcome> PublishAsync(string topic, byte[] data, string? key, string clientId, string? requestId)
    {
        var started = Stopwatch.GetTimestamp();
        if (TopicRouting.Refusal(log.Settings, topic) is { } refused) return new PublishOutcome(null, refused);
        var mapping = log.Settings.Resolve(topic)!;
        if (mapping.ReadOnly) return PublishOutcome.Refused(ErrorCodes.Forbidden, $"topic {topic} is read-only");
        object reply;
        try
        {
            if (!mapping.Create)
            {
                // A topic that must exist: checked once per node (cached), so a missing one is not_found, not unavailable.
                using var timeout = new CancellationTokenSource(requestTimeout);
                await log.EnsureTopicAsync(mapping, timeout.Token).ConfigureAwait(false);
            }
            // The deadline travels with the publish: the writer never hands it to Kafka unless
            // Kafka's answer can be back before this Ask gives up.
            var deadline = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + (long)requestTimeout.TotalMilliseconds;
            reply = await topics.Ask<object>(new TopicCommands.Publish(topic, data, key, clientId, requestId, deadline), requestTimeout).ConfigureAwait(false);
        }
        catch (TopicNotFoundException e)
        {
            return PublishOutcome.Refused(ErrorCodes.NotFound, e.Message);
        }
        catch (AskTimeoutException)
        {
            // The topic's writer did not answer (it is moving to another node, or the log stopped
            // answering while the message was on its way): whether it was written is not known here.
            return PublishOutcome.Refused(ErrorCodes.Unavailable,
                "the topic's writer did not answer in time; resend the message with the same id: it is written at most once");
        }
        catch (Exception e) when (e is KafkaException or TimeoutException or OperationCanceledException)
        {
            return PublishOutcome.Refused(ErrorCodes.Unavailable, "the log is unavailable; retry");
        }
        switch (reply)
        {
            case TopicCommands.PublishAck a:
                metrics.MessageIn();
                metrics.PublishAckLatency.ObserveSince(started);
                return new PublishOutcome(a.Pos, default, a.Duplicate);
            case TopicCommands.PublishRejected r:
                return PublishOutcome.Refused(r.Code, r.Message);
            default:
                return PublishOutcome.Refused(ErrorCodes.Internal, "unexpected reply from the topic");
        }
    }
}
