using Akka.Actor;
using Broker.Core.Connections;

namespace Broker.Core.Sessions;

/// <summary>
/// A connection's address for its session actor (which may live on another node): told
/// <see cref="SessionCommands.TakenOver"/>, it closes the connection with 1008 <c>session_taken_over</c>.
/// </summary>
public sealed class SessionEndpoint : ReceiveActor
{
    public const int TakenOverCode = 1008;
    public const string TakenOverReason = "session_taken_over";

    public SessionEndpoint(Outbound outbound)
    {
        Receive<SessionCommands.TakenOver>(_ => outbound.RequestClose(TakenOverCode, TakenOverReason));
    }

    public static Props Props(Outbound outbound) => Akka.Actor.Props.Create(() => new SessionEndpoint(outbound));
}
