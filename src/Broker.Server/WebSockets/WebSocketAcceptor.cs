using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Broker.Core.Connections;
using Broker.Core.Settings;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace Broker.Server.WebSockets;

/// <summary>An accepted WebSocket and, when the broker did the HTTP/1.1 handshake itself, the stream that coalesces its writes.</summary>
public sealed record AcceptedWebSocket(WebSocket Socket, WriteCoalescingStream? Coalescing, bool Compressed);

/// <summary>
/// Accepts a WebSocket upgrade (RFC 6455) the way ASP.NET Core's middleware does, but puts a
/// <see cref="WriteCoalescingStream"/> between the WebSocket and the upgraded connection, so that
/// the connection's writer can send many frames with one flush (Kestrel flushes every write of an
/// upgraded stream). permessage-deflate (RFC 7692) is negotiated here when enabled. A request that
/// is not an HTTP/1.1 upgrade (an HTTP/2 extended CONNECT) goes through the framework's own accept.
/// </summary>
public static class WebSocketAcceptor
{
    private const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private const string Deflate = "permessage-deflate";

    /// <summary>Accepts the upgrade, or writes the HTTP error and returns null.</summary>
    public static async Task<AcceptedWebSocket?> AcceptAsync(HttpContext context, ConnectionSettings settings)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is not { IsUpgradableRequest: true })
        {
            var framework = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                KeepAliveInterval = settings.KeepAliveInterval,
                KeepAliveTimeout = settings.IdleTimeout,
                DangerousEnableCompression = settings.Compression,
                DisableServerContextTakeover = true,
            }).ConfigureAwait(false);
            return new AcceptedWebSocket(framework, null, false);
        }
        var request = context.Request;
        if (!HttpMethods.IsGet(request.Method)
            || !HasToken(request.Headers.Connection, "upgrade")
            || !HasToken(request.Headers.Upgrade, "websocket"))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return null;
        }
        if (request.Headers.SecWebSocketVersion.ToString() != "13")
        {
            context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            context.Response.Headers.SecWebSocketVersion = "13";
            return null;
        }
        var key = request.Headers.SecWebSocketKey.ToString();
        if (!IsValidKey(key))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return null;
        }
        WebSocketDeflateOptions? deflate = null;
        if (settings.Compression && Negotiate(request.Headers.SecWebSocketExtensions, out var options, out var response))
        {
            deflate = options;
            context.Response.Headers.SecWebSocketExtensions = response;
        }
        context.Response.Headers.Connection = "Upgrade";
        context.Response.Headers.Upgrade = "websocket";
        context.Response.Headers.SecWebSocketAccept = AcceptKey(key);
        var stream = await upgrade.UpgradeAsync().ConfigureAwait(false); // sends 101 Switching Protocols
        var coalescing = new WriteCoalescingStream(stream);
        var socket = WebSocket.CreateFromStream(coalescing, new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = settings.KeepAliveInterval,
            KeepAliveTimeout = settings.IdleTimeout,
            DangerousDeflateOptions = deflate,
        });
        return new AcceptedWebSocket(socket, coalescing, deflate is not null);
    }

    private static bool HasToken(StringValues header, string token)
    {
        foreach (var value in header)
        {
            if (value is null) continue;
            foreach (var part in value.Split(','))
                if (part.Trim().Equals(token, StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }

    private static bool IsValidKey(string key)
    {
        Span<byte> bytes = stackalloc byte[24];
        return key.Length == 24 && Convert.TryFromBase64String(key, bytes, out var n) && n == 16;
    }

    /// <summary>The Sec-WebSocket-Accept value of a key (RFC 6455 §4.2.2).</summary>
    public static string AcceptKey(string key) => Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + Guid)));

    /// <summary>
    /// Accepts the first permessage-deflate offer the broker can honour. The broker always answers
    /// with no context takeover in both directions (RFC 7692 lets a server ask for that even when
    /// the client did not): no deflate state outlives a message, so compression costs no memory
    /// on an idle connection. A requested server_max_window_bits (9–15) is honoured.
    /// </summary>
    internal static bool Negotiate(StringValues offers, out WebSocketDeflateOptions options, out string response)
    {
        foreach (var header in offers)
        {
            if (header is null) continue;
            foreach (var offer in header.Split(','))
            {
                var parts = offer.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 0 || !parts[0].Equals(Deflate, StringComparison.OrdinalIgnoreCase)) continue;
                var serverBits = 15;
                var acceptable = true;
                for (var i = 1; i < parts.Length && acceptable; i++)
                {
                    var eq = parts[i].IndexOf('=');
                    var name = (eq < 0 ? parts[i] : parts[i][..eq]).Trim().ToLowerInvariant();
                    var value = eq < 0 ? null : parts[i][(eq + 1)..].Trim().Trim('"');
                    switch (name)
                    {
                        case "server_no_context_takeover":
                        case "client_no_context_takeover":
                        case "client_max_window_bits": // the client's window: ours inflates any (15)
                            break;
                        case "server_max_window_bits":
                            acceptable = int.TryParse(value, out serverBits) && serverBits is >= 9 and <= 15;
                            break;
                        default:
                            acceptable = false; // a parameter we do not know: decline this offer
                            break;
                    }
                }
                if (!acceptable) continue;
                options = new WebSocketDeflateOptions
                {
                    ServerMaxWindowBits = serverBits,
                    ClientMaxWindowBits = 15,
                    ServerContextTakeover = false,
                    ClientContextTakeover = false,
                };
                response = serverBits == 15
                    ? $"{Deflate}; server_no_context_takeover; client_no_context_takeover"
                    : $"{Deflate}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits={serverBits}";
                return true;
            }
        }
        options = null!;
        response = "";
        return false;
    }
}
