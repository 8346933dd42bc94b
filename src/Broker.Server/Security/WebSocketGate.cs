using System.Globalization;
using Broker.Core.Security;

namespace Broker.Server.Security;

/// <summary>
/// Everything decided about a WebSocket upgrade before it is accepted: the origin (403), admission
/// (node, address and subject caps, connection rate: 503 with Retry-After), and the token of the
/// upgrade request (<c>Authorization: Bearer</c>, or <c>?token=</c> when <c>broker.auth.query-token</c>).
/// A refused token is not refused here: the upgrade is accepted and the connection answers
/// <c>error unauthorized</c> and closes with 1008, which browsers can see (an HTTP status they cannot).
/// </summary>
public sealed class WebSocketGate(NodeSecurity security, OriginPolicy origins)
{
    /// <summary>The connection's security state, or null when the response (403/503) is written.</summary>
    public async Task<ConnectionSecurity?> AdmitAsync(HttpContext context, bool wantsSession)
    {
        if (origins.Refusal(context.Request) is { } badOrigin)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsync(badOrigin + "\n");
            return null;
        }
        var remote = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var admitted = security.Admission.AdmitConnection(remote);
        if (admitted.Leases is not { } leases) return await Busy(context, admitted.Refusal!, admitted.RetryAfter);
        try
        {
            var token = Token(context.Request);
            var identity = ClientIdentity.Anonymous(remote);
            string? problem = null;
            if (security.Validator is not null && token is not null)
            {
                var result = await security.Validator.ValidateAsync(token, remote);
                if (result.Valid) identity = result.Identity!;
                else problem = result.Problem;
            }
            if (identity.IsAuthenticated && !security.Admission.AdmitSubject(leases, identity.Subject!))
                return await Refuse(leases, context, security.Admission.SubjectCapMessage(identity.Subject!), security.Admission.RetryAfter);
            var awaitFirstFrame = security.Auth.Mode == AuthMode.Required && token is null;
            if (wantsSession && !awaitFirstFrame && problem is null)
            {
                if (security.Quotas.Session(identity.Partition, out var refused) is { } lease) leases.Add(lease);
                else return await Refuse(leases, context, refused!.Value.Message, security.Admission.RetryAfter);
            }
            return new ConnectionSecurity(security, identity, problem, awaitFirstFrame, leases, wantsSession);
        }
        catch
        {
            leases.Dispose();
            throw;
        }
    }

    private string? Token(HttpRequest request)
    {
        if (BearerToken.From(request) is { } bearer) return bearer;
        if (security.Auth.QueryToken && request.Query["token"].ToString() is { Length: > 0 } query) return query;
        return null;
    }

    private static async Task<ConnectionSecurity?> Refuse(Leases leases, HttpContext context, string why, TimeSpan retryAfter)
    {
        leases.Dispose();
        return await Busy(context, why, retryAfter);
    }

    private static async Task<ConnectionSecurity?> Busy(HttpContext context, string why, TimeSpan retryAfter)
    {
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        await context.Response.WriteAsync(why + "\n");
        return null;
    }
}
