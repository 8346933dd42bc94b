namespace Broker.Server.Security;

/// <summary>
/// <c>broker.websocket.allowed-origins</c> on the WebSocket upgrade and on <c>POST /v1/publish</c>: a
/// browser sends <c>Origin</c>, and a page of another site must not use a visitor's network position
/// or cookies to talk to the broker (a cross-site form or no-cors <c>fetch</c> can POST without a
/// preflight). A request without <c>Origin</c> (a service, not a browser) passes; the broker's own pages (same
/// scheme, host and port) pass; otherwise the origin must be listed (exactly, e.g.
/// <c>https://app.example.com</c>; <c>*</c> allows every origin). An empty list allows every origin
/// only on the anonymous quick start bound to loopback.
/// </summary>
public sealed class OriginPolicy(IReadOnlyList<string> allowed, bool anyWhenEmpty)
{
    private readonly HashSet<string> _allowed = allowed.Select(o => o.Trim().TrimEnd('/')).Where(o => o.Length > 0).ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Null when the request's origin may connect, else why not.</summary>
    public string? Refusal(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0) return null;
        if (_allowed.Contains("*") || _allowed.Contains(origin.TrimEnd('/'))) return null;
        if (_allowed.Count == 0 && anyWhenEmpty) return null;
        if (Uri.TryCreate(origin, UriKind.Absolute, out var o) && request.Host.HasValue
            && string.Equals(o.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)
            && string.Equals(o.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase))
            return null;
        return $"origin {origin} is not allowed (broker.websocket.allowed-origins)";
    }
}
