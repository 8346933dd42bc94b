using Akka.Actor;
using Akka.Streams;
using Broker.Core.Log;
using Broker.Core.Sessions;
using Broker.Core.Settings;

namespace Broker.Core.Connections;

/// <summary>
/// What every connection of a node shares: the log, the node feeds, the topic region, and (for
/// durable sessions) the session region and the actor system that hosts connection endpoints.
/// </summary>
public sealed record NodeServices(
    ConnectionSettings Settings,
    KafkaLog Log,
    FeedHub Feeds,
    CatchUpReader Replay,
    IActorRef Topics,
    IMaterializer Materializer,
    ConnectionRegistry Registry,
    IActorRef? Sessions = null,
    ActorSystem? System = null,
    SessionSettings? SessionSettings = null,
    Metrics.BrokerMetrics? Metrics = null);
