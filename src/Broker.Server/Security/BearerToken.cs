namespace Broker.Server.Security;

/// <summary>The token of a request's <c>Authorization: Bearer &lt;jwt&gt;</c> header (RFC 6750 §2.1), shared by the WebSocket upgrade and HTTP publish.</summary>
public static class BearerToken
{
    private const string Scheme = "Bearer ";

    /// <summary>The token, or null when the request has no <c>Authorization</c> header of the Bearer scheme with a value.</summary>
    public static string? From(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && header[Scheme.Length..].Trim() is { Length: > 0 } token ? token : null;
    }
}
