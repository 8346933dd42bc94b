using Broker.Core.Security;
using Broker.Protocol;

namespace Broker.Server.Security;

/// <summary>Who an HTTP publish request is, or why it is refused as a whole (with the HTTP status and, for a 401, the <c>WWW-Authenticate</c> challenge).</summary>
public readonly record struct HttpAdmission(ClientIdentity? Identity, int Status, ProtocolError Refusal, string? Challenge);

/// <summary>
/// Everything decided about a <c>POST /v1/publish</c> before its body is read, with the same rules
/// as <see cref="WebSocketGate"/>: the origin (<c>broker.websocket.allowed-origins</c>, 403), then
/// the token of <c>Authorization: Bearer</c>. With auth off every request is anonymous (a header is
/// not looked at, as on /ws). With auth on, a token that does not validate is refused with 401
/// <c>unauthorized</c> (an HTTP client, unlike a browser's WebSocket, can read the status); with
/// <c>required</c>, so is a request without one. A request without a token under <c>optional</c> is
/// anonymous. A <c>?token=</c> is refused (400): a token in a URL ends up in access logs, and here,
/// unlike on /ws, every client can send the header. Connection admission (<c>connections-per-*</c>)
/// does not apply: a request is not a connection; its publishes count against the subject's rates.
/// </summary>
public sealed class HttpPublishGate(NodeSecurity security, OriginPolicy origins)
{
    /// <summary>The challenge of a 401 without a token (RFC 6750 §3).</summary>
    public const string Challenge = "Bearer";

    /// <summary>The challenge of a 401 for a token that was refused (RFC 6750 §3.1).</summary>
    public const string InvalidTokenChallenge = "Bearer error=\"invalid_token\"";

    public async Task<HttpAdmission> AdmitAsync(HttpRequest request)
    {
        if (origins.Refusal(request) is { } badOrigin) return Refused(StatusCodes.Status403Forbidden, ErrorCodes.Forbidden, badOrigin);
        var remote = request.HttpContext.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var anonymous = ClientIdentity.Anonymous(remote);
        if (security.Validator is not { } validator) return new HttpAdmission(anonymous, StatusCodes.Status200OK, default, null);
        if (request.Query.ContainsKey("token"))
            return Refused(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, "send the token as Authorization: Bearer <jwt>: HTTP publish takes no ?token=");
        var token = BearerToken.From(request);
        if (token is null)
        {
            if (request.Headers.Authorization.Count > 0)
                return Refused(StatusCodes.Status401Unauthorized, ErrorCodes.Unauthorized, "the Authorization header must be Bearer <jwt>", Challenge);
            return security.Auth.Mode == AuthMode.Required
                ? Refused(StatusCodes.Status401Unauthorized, ErrorCodes.Unauthorized, "a token is required (broker.auth.mode = required): send Authorization: Bearer <jwt>", Challenge)
                : new HttpAdmission(anonymous, StatusCodes.Status200OK, default, null);
        }
        var result = await validator.ValidateAsync(token, remote);
        return result.Valid
            ? new HttpAdmission(result.Identity, StatusCodes.Status200OK, default, null)
            : Refused(StatusCodes.Status401Unauthorized, ErrorCodes.Unauthorized, result.Problem!, InvalidTokenChallenge);
    }

    private static HttpAdmission Refused(int status, string code, string message, string? challenge = null) =>
        new(null, status, new ProtocolError(code, message), challenge);
}
