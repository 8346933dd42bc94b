using System.Text.Json.Nodes;
using Akka.Actor;
using Broker.Server.Admin;
using Broker.Server.Configuration;

namespace Broker.Server.Security;

/// <summary>
/// <c>broker.http.internal-endpoints</c>: <c>public</c> (default, the quick start) serves the
/// dashboard (<c>/</c>, <c>/api/*</c>), <c>/metrics</c> and the detailed <c>/readyz</c> body on the
/// public listener as before; <c>admin</c> serves them on the admin listener only, and the public
/// <c>/readyz</c> answers its status with <c>{"ready":true|false}</c> (load balancers and
/// healthchecks need nothing more). /ws and /healthz stay public either way.
/// </summary>
public static class PublicSurface
{
    public static WebApplication UsePublicSurface(this WebApplication app, InternalEndpoints internalEndpoints)
    {
        if (internalEndpoints == InternalEndpoints.Public) return app;
        app.Use(async (http, next) =>
        {
            if (Listeners.Of(http) is Listener.Admin) { await next(http); return; }
            var path = http.Request.Path;
            if (path.StartsWithSegments("/readyz"))
            {
                var (ready, _) = await http.RequestServices.GetRequiredService<ReadinessProbe>().CheckAsync(http.RequestServices.GetRequiredService<ActorSystem>());
                http.Response.StatusCode = ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync(new JsonObject { ["ready"] = ready }.ToJsonString());
                return;
            }
            if (path == "/" || path.StartsWithSegments("/api") || path.StartsWithSegments("/metrics") || path.StartsWithSegments("/dashboard.js"))
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }
            await next(http);
        });
        return app;
    }
}
