using Broker.Core.Replay;
using Broker.Core.Fanout;
using Akka.Actor;
using Broker.Core.Log;
using Broker.Core.Publish;
using Broker.Core.Sessions;
using Broker.Core.Settings;

namespace Broker.Core.Connections;

/// <summary>
/// What every connection of a node shares: the log, the node feeds, the catch-up reader, the
/// publisher (the way to the topics' writers), the registry and metrics, and (for durable
/// sessions) the session region and the actor system that hosts connection endpoints.
/// </summary>
public sealed record NodeServices(
    ConnectionSettings Settings,
    KafkaLog Log,
    FeedHub Feeds,
    CatchUpReader Replay,
    Publisher Publisher,
    ConnectionRegistry Registry,
    Metrics.BrokerMetrics Metrics,
    IActorRef? Sessions = null,
    ActorSystem? System = null,
    SessionSettings? SessionSettings = null);
