using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Broker.Server.Configuration;
using Broker.Server.Admin;

namespace Broker.Server.Admin;

/// <summary>
/// The admin API's front door, in this order: the request must have come in on the admin listener
/// (else 404, whatever the port number); its <c>Host</c> must be an IP address, <c>localhost</c>,
/// this machine's name or the cluster host name, or one of <c>broker.admin.allowed-hosts</c> (else
/// 400: a DNS-rebinding page cannot reach it through a name it controls); the bearer token, when
/// one is configured, compared in constant time (else 401); and POST/PUT must carry a JSON content
/// type (else 415: an HTML form or a no-cors <c>fetch</c> from another site cannot send one). Every
/// action that changes something is logged with who (the token's fingerprint, or "no token") and
/// from where.
/// </summary>
public sealed class AdminGuard : IEndpointFilter
{
    private readonly byte[]? _tokenHash;
    private readonly string _who;
    private readonly HashSet<string> _hosts;
    private readonly ILogger _logger;

    public AdminGuard(string token, IEnumerable<string> allowedHosts, ILogger logger)
    {
        _logger = logger;
        if (token.Length > 0)
        {
            _tokenHash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
            _who = "token " + Convert.ToHexStringLower(_tokenHash)[..8];
        }
        else
        {
            _who = "no token (loopback)";
        }
        _hosts = allowedHosts.Select(h => h.Trim().ToLowerInvariant()).Where(h => h.Length > 0).ToHashSet(StringComparer.Ordinal);
        _hosts.Add("localhost");
        _hosts.Add(Dns.GetHostName().ToLowerInvariant());
    }

    public static AdminGuard From(AdminSettings admin, BrokerClusterSettings cluster, ILogger logger) =>
        new(admin.Token, [.. admin.AllowedHosts, cluster.Hostname], logger);

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext ctx, EndpointFilterDelegate next)
    {
        var http = ctx.HttpContext;
        if (Security.Listeners.Of(http) is not Security.Listener.Admin) return Results.NotFound();
        if (!HostAllowed(http.Request.Host.Host))
            return AdminApi.Error(StatusCodes.Status400BadRequest, $"Host '{http.Request.Host.Host}' is not one of the admin API's names (broker.admin.allowed-hosts)");
        if (_tokenHash is not null && !TokenMatches(http.Request.Headers.Authorization.ToString()))
        {
            _logger.LogWarning("Admin API: {Method} {Path} from {Remote} refused: no valid token", http.Request.Method, http.Request.Path, http.Connection.RemoteIpAddress);
            return AdminApi.Json(new JsonObject { ["error"] = "unauthorized: send Authorization: Bearer <broker.admin.token>" }, StatusCodes.Status401Unauthorized);
        }
        var changes = HttpMethods.IsPost(http.Request.Method) || HttpMethods.IsPut(http.Request.Method) || HttpMethods.IsDelete(http.Request.Method);
        if (changes && !http.Request.HasJsonContentType())
            return AdminApi.Error(StatusCodes.Status415UnsupportedMediaType, "send the request with Content-Type: application/json");
        var result = await next(ctx);
        if (changes)
            _logger.LogInformation("Admin API: {Method} {Path} by {Who} from {Remote}", http.Request.Method, http.Request.Path, _who, http.Connection.RemoteIpAddress);
        return result;
    }

    private bool HostAllowed(string host)
    {
        host = host.Trim('[', ']');
        return IPAddress.TryParse(host, out _) || _hosts.Contains(host.ToLowerInvariant());
    }

    private bool TokenMatches(string header)
    {
        const string prefix = "Bearer ";
        if (!header.StartsWith(prefix, StringComparison.Ordinal)) return false;
        // Hashes have one length, so the comparison takes the same time whatever was sent.
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[prefix.Length..]));
        return CryptographicOperations.FixedTimeEquals(presented, _tokenHash);
    }
}
