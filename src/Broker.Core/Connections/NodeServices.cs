using Akka.Actor;
using Akka.Streams;
using Broker.Core.Log;
using Broker.Core.Settings;

namespace Broker.Core.Connections;

/// <summary>What every connection of a node shares: the log, the node feeds, the topic region.</summary>
public sealed record NodeServices(
    ConnectionSettings Settings,
    KafkaLog Log,
    FeedHub Feeds,
    CatchUpReader Replay,
    IActorRef Topics,
    IMaterializer Materializer,
    ConnectionRegistry Registry);
