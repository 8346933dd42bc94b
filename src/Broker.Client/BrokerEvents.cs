namespace Broker.Client;

/// <summary>The state of a <see cref="BrokerClient"/>'s connection.</summary>
public enum BrokerConnectionState
{
    /// <summary>An attempt to connect is under way (WebSocket handshake, auth, session restore).</summary>
    Connecting,
    /// <summary>Connected: requests are sent at once.</summary>
    Connected,
    /// <summary>The connection ended; the client reconnects after <see cref="BrokerStateChangedEventArgs.RetryIn"/>.</summary>
    Disconnected,
    /// <summary>The client stopped for good (disposed, or a close it must not retry): <see cref="BrokerClient.Completion"/> says why.</summary>
    Closed,
}

/// <summary>A change of <see cref="BrokerClient.State"/>.</summary>
public sealed class BrokerStateChangedEventArgs : EventArgs
{
    internal BrokerStateChangedEventArgs(BrokerConnectionState state, Uri endpoint, int attempt, BrokerCloseInfo? close, Exception? exception, TimeSpan? retryIn)
    {
        State = state;
        Endpoint = endpoint;
        Attempt = attempt;
        Close = close;
        Exception = exception;
        RetryIn = retryIn;
    }

    /// <summary>The new state.</summary>
    public BrokerConnectionState State { get; }

    /// <summary>The endpoint connected to, being connected to, or just left.</summary>
    public Uri Endpoint { get; }

    /// <summary>
    /// With <see cref="BrokerConnectionState.Connecting"/>: the attempt's number (1 = the first since a
    /// working connection). With <see cref="BrokerConnectionState.Disconnected"/>: failed attempts in a
    /// row (0 when a working connection ended).
    /// </summary>
    public int Attempt { get; }

    /// <summary>With <see cref="BrokerConnectionState.Disconnected"/> and <see cref="BrokerConnectionState.Closed"/>: the close code and reason.</summary>
    public BrokerCloseInfo? Close { get; }

    /// <summary>The failure that ended the connection or attempt, if any.</summary>
    public Exception? Exception { get; }

    /// <summary>With <see cref="BrokerConnectionState.Disconnected"/>: the delay before the next attempt.</summary>
    public TimeSpan? RetryIn { get; }

    /// <summary>The close code, if the state change has one.</summary>
    public int? CloseCode => Close?.CloseCode;

    /// <summary>The close reason, if the state change has one.</summary>
    public string? Reason => Close?.Reason;
}

/// <summary>An <c>error</c> frame that no awaited request received (a refused commit, a session store that is down).</summary>
public sealed class BrokerErrorEventArgs : EventArgs
{
    internal BrokerErrorEventArgs(BrokerErrorException error, string? requestId)
    {
        Error = error;
        RequestId = requestId;
    }

    /// <summary>The error.</summary>
    public BrokerErrorException Error { get; }

    /// <summary>The id of the request it answers, if any.</summary>
    public string? RequestId { get; }
}

/// <summary>A subscription was (re)established on a connection: after the first subscribe, every reconnect, and every session restore.</summary>
public sealed class SubscriptionResumedEventArgs : EventArgs
{
    internal SubscriptionResumedEventArgs(string head, bool? recovered, bool restoredBySession, bool isFirst)
    {
        Head = head;
        Recovered = recovered;
        RestoredBySession = restoredBySession;
        IsFirst = isFirst;
    }

    /// <summary>The topic's head position when the broker (re)subscribed.</summary>
    public string Head { get; }

    /// <summary>
    /// When the subscription resumed from a position: true when every message after it was still
    /// retained, false when some were lost (the next message has <see cref="BrokerMessage.AfterGap"/>).
    /// Null when it started without a position.
    /// </summary>
    public bool? Recovered { get; }

    /// <summary>True when the durable session restored the subscription (no <c>subscribe</c> was sent).</summary>
    public bool RestoredBySession { get; }

    /// <summary>True for the subscription's first <c>subscribed</c>; false after reconnects.</summary>
    public bool IsFirst { get; }
}
