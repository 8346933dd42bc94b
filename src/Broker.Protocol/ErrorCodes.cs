namespace Broker.Protocol;

/// <summary>The error codes of the protocol (docs/protocol.md, "Errors"), as they appear on the wire.</summary>
public static class ErrorCodes
{
    public const string BadRequest = "bad_request";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string NotFound = "not_found";
    public const string TooLarge = "too_large";
    /// <summary>A publish reused a (client, id) the topic remembers, with other data or key: never acknowledged.</summary>
    public const string Conflict = "conflict";
    public const string RateLimited = "rate_limited";
    public const string Overloaded = "overloaded";
    public const string Unavailable = "unavailable";
    public const string Internal = "internal";
}

/// <summary>WebSocket close codes used by the broker (docs/protocol.md, "Close codes").</summary>
public static class CloseCodes
{
    public const int Normal = 1000;
    public const int GoingAway = 1001;
    public const int PolicyViolation = 1008;
    public const int TooBig = 1009;
    public const int InternalError = 1011;
    public const int TryAgainLater = 1013;
}

/// <summary>Close reasons of the auth flow (close code 1008, or 1013 for a connection cap met at the first-frame auth).</summary>
public static class CloseReasons
{
    public const string Unauthorized = "unauthorized";
    public const string AuthTimeout = "auth_timeout";
    public const string TokenExpired = "token_expired";
    public const string TooManyConnections = "too_many_connections";
}

/// <summary>An error to send to the client: code plus a human readable message.</summary>
/// <param name="RetryAfterMs">With <c>rate_limited</c>: when the request may succeed again (sent as <c>retry_after_ms</c>).</param>
public readonly record struct ProtocolError(string Code, string Message, long? RetryAfterMs = null)
{
    public static ProtocolError BadRequest(string message) => new(ErrorCodes.BadRequest, message);
}
