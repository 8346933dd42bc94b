using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.IdentityModel.Tokens;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// An identity provider's JWKS endpoint for a test: Kestrel on a free 127.0.0.1 port serving
/// <c>/jwks.json</c>, whose keys the test replaces (<see cref="Publish"/>) to rotate them, and
/// which counts how often it was fetched.
/// </summary>
public sealed class JwksServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private volatile string _document;
    private int _fetches;

    private JwksServer(WebApplication app, string document)
    {
        _app = app;
        _document = document;
    }

    public string Url => _app.Urls.Single() + "/jwks.json";

    /// <summary>How many times the document was fetched.</summary>
    public int Fetches => Volatile.Read(ref _fetches);

    public static async Task<JwksServer> StartAsync(params SecurityKey[] keys)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var server = new JwksServer(builder.Build(), Tokens.Jwks(keys));
        server._app.MapGet("/jwks.json", () =>
        {
            Interlocked.Increment(ref server._fetches);
            return Results.Text(server._document, "application/json");
        });
        await server._app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return server;
    }

    /// <summary>Serves <paramref name="keys"/> from now on (the previous ones are gone from the document).</summary>
    public void Publish(params SecurityKey[] keys) => _document = Tokens.Jwks(keys);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await _app.DisposeAsync();
    }
}
