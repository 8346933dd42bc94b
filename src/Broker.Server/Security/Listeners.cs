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
/// /admin never answers on the public listener. The tag is a connection feature, one shared
/// instance per listener (connection items would cost every connection a dictionary for its lifetime).
/// </summary>
public static class Listeners
{
    public static ListenOptions Tag(this ListenOptions options, Listener listener)
    {
        var tag = new ListenerTag(listener);
        options.Use(next => connection =>
        {
            connection.Features.Set(tag);
            return next(connection);
        });
        return options;
    }

    /// <summary>The listener of the request's connection (null: not a tagged Kestrel connection, e.g. a test server).</summary>
    public static Listener? Of(HttpContext http) => http.Features.Get<ListenerTag>()?.Listener;

    /// <summary>The feature a listener sets on each of its connections.</summary>
    private sealed class ListenerTag(Listener listener)
    {
        public Listener Listener { get; } = listener;
    }
}
