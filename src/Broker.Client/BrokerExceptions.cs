namespace Broker.Client;

/// <summary>Base of the exceptions the client throws for broker outcomes.</summary>
public class BrokerException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BrokerException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}

/// <summary>The broker refused a request with an <c>error</c> frame (or an HTTP error response).</summary>
public sealed class BrokerErrorException : BrokerException
{
    /// <summary>Creates the exception for an error the broker sent.</summary>
    public BrokerErrorException(string code, string message, TimeSpan? retryAfter = null, int? httpStatus = null)
        : base($"{code}: {message}")
    {
        Code = code;
        BrokerMessage = message;
        RetryAfter = retryAfter;
        HttpStatus = httpStatus;
    }

    /// <summary>The error code, one of <see cref="BrokerErrorCodes"/>.</summary>
    public string Code { get; }

    /// <summary>The broker's human-readable message.</summary>
    public string BrokerMessage { get; }

    /// <summary>The delay the broker asked for (<c>retry_after_ms</c> or <c>Retry-After</c>), if any.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>The HTTP status of an HTTP publish; null on WebSocket.</summary>
    public int? HttpStatus { get; }

    /// <summary>Whether sending the same request again may succeed (<see cref="BrokerErrorCodes.IsTransient"/>).</summary>
    public bool IsTransient => BrokerErrorCodes.IsTransient(Code);
}

/// <summary>
/// The client stopped for good: the broker closed with a code that forbids reconnecting (1008,
/// 1009), refused the WebSocket upgrade (HTTP 400, 401, 403, 404), or every reconnect attempt the
/// policy allows failed. <see cref="Info"/> says why.
/// </summary>
public sealed class BrokerClosedException : BrokerException
{
    /// <summary>Creates the exception.</summary>
    public BrokerClosedException(BrokerCloseInfo info, Exception? inner = null) : base("the broker client stopped: " + info, inner)
    {
        Info = info;
    }

    /// <summary>Why the client stopped.</summary>
    public BrokerCloseInfo Info { get; }
}

/// <summary>
/// <see cref="BrokerClientOptions.MaxPendingPublishes"/> publishes already wait for their ack (for
/// example while the client is disconnected): this one was not queued. Retry later or slow down.
/// </summary>
public sealed class PublishQueueFullException : BrokerException
{
    /// <summary>Creates the exception.</summary>
    public PublishQueueFullException(int capacity)
        : base($"{capacity} publishes are already waiting for their ack (BrokerClientOptions.MaxPendingPublishes); this one was not queued")
    {
        Capacity = capacity;
    }

    /// <summary>The bound that was reached.</summary>
    public int Capacity { get; }
}

/// <summary>Why a connection ended or the client stopped.</summary>
/// <param name="CloseCode">The WebSocket close code (1006 when the connection dropped without one); null when no connection was made.</param>
/// <param name="Reason">The close reason, or a description of the failure.</param>
/// <param name="HttpStatus">The HTTP status when the WebSocket upgrade was refused.</param>
public sealed record BrokerCloseInfo(int? CloseCode, string Reason, int? HttpStatus = null)
{
    /// <inheritdoc />
    public override string ToString() =>
        (CloseCode is { } c ? $"close {c}" : HttpStatus is { } h ? $"HTTP {h}" : "no connection") + (Reason.Length > 0 ? $" ({Reason})" : "");
}
