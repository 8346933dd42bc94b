namespace Broker.Client;

/// <summary>The error codes the broker sends in <c>error</c> frames and HTTP error bodies (docs/protocol.md, "Errors").</summary>
public static class BrokerErrorCodes
{
    /// <summary>Malformed JSON, unknown type, invalid topic or field.</summary>
    public const string BadRequest = "bad_request";
    /// <summary>No valid token, or the token was refused.</summary>
    public const string Unauthorized = "unauthorized";
    /// <summary>The topic may not be used this way (a read-only namespace, a topic in no namespace, token claims).</summary>
    public const string Forbidden = "forbidden";
    /// <summary>The topic does not exist (or the subscription to unsubscribe or commit does not).</summary>
    public const string NotFound = "not_found";
    /// <summary>A publish that reuses a request id with different data or key.</summary>
    public const string Conflict = "conflict";
    /// <summary>The data (or the frame, or the request) is larger than the broker accepts.</summary>
    public const string TooLarge = "too_large";
    /// <summary>Too many requests; retry after the hinted delay.</summary>
    public const string RateLimited = "rate_limited";
    /// <summary>The broker is overloaded; retry.</summary>
    public const string Overloaded = "overloaded";
    /// <summary>The log (or the session store) cannot be reached; nothing was stored; retry.</summary>
    public const string Unavailable = "unavailable";
    /// <summary>A bug in the broker.</summary>
    public const string Internal = "internal";

    /// <summary>Whether a request refused with <paramref name="code"/> may succeed when sent again unchanged.</summary>
    public static bool IsTransient(string code) => code is Unavailable or Overloaded or RateLimited;
}

/// <summary>WebSocket close codes the broker uses (docs/protocol.md, "Close codes").</summary>
public static class BrokerCloseCodes
{
    /// <summary>Normal closure (the client closed).</summary>
    public const int Normal = 1000;
    /// <summary>The node is shutting down or draining: reconnect to any node.</summary>
    public const int GoingAway = 1001;
    /// <summary>The connection dropped without a close frame (a killed node, a broken network).</summary>
    public const int Abnormal = 1006;
    /// <summary>Policy violation: auth refused or expired, or the durable session was taken over.</summary>
    public const int PolicyViolation = 1008;
    /// <summary>A frame was larger than the broker accepts.</summary>
    public const int TooBig = 1009;
    /// <summary>The broker could not write to the socket.</summary>
    public const int InternalError = 1011;
    /// <summary>Slow consumer or overloaded: reconnect and resume.</summary>
    public const int TryAgainLater = 1013;
}
