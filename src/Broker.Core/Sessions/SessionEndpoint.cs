using Akka.Actor;

namespace Broker.Core.Sessions;

/// <summary>
/// A connection's address for its session actor (which may live on another node): told
/// <see cref="SessionCommands.TakenOver"/>, it closes the connection with 1008 <c>session_taken_over</c>.
/// </summary>
public sealed class SessionEndpoint : ReceiveActor
{
    public const int TakenOverCode = 1008;
    public const string TakenOverReason = "session_taken_over";

    /// <param name="close">Closes the connection with a code and a reason.</param>
    public SessionEndpoint(Action<int, string> close)
    {
        Receive<SessionCommands.TakenOver>(_ => close(TakenOverCode, TakenOverReason));
    }

    public static Props Props(Action<int, string> close) => Akka.Actor.Props.Create(() => new SessionEndpoint(close));
}
