using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Broker.Server.Security;

/// <summary>The two Kestrel listeners of a node.</summary>
public enum Listener
{
    /// <summary>Clients: /ws, health, and (unless moved) the dashboard, /api/* and /metrics.</summary>
    Public,
    /// <summary>Operators: /admin/* (and what <c>broker.http.internal-endpoints = admin</c> moves here).</summary>
    Admin,
}

/// <summary>
/// Identifies the listener a request came in on by the endpoint that accepted its connection, not
/// by port number: each listener tags its connections (a Kestrel connection middleware) and
/// requests read the tag. So with /ws and the admin API on the same port number of two addresses,
/// /admin never answers on the public listener.
/// </summary>
public static class Listeners
{
    private static readonly object Key = new();

    public static ListenOptions Tag(this ListenOptions options, Listener listener)
    {
        options.Use(next => connection =>
        {
            connection.Items[Key] = listener;
            return next(connection);
        });
        return options;
    }

    /// <summary>The listener of the request's connection (null: not a tagged Kestrel connection, e.g. a test server).</summary>
    public static Listener? Of(HttpContext http) =>
        http.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(Key, out var value) == true ? (Listener)value! : null;
}
