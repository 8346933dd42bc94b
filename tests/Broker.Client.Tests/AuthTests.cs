using System.Text.Json.Nodes;
using Broker.Client.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>The token hook (plan item 3): the auth frame first, a fresh token on token_expiring, stop when refused.</summary>
public sealed class AuthTests : IAsyncLifetime
{
    private FakeBroker _fake = null!;
    private int _issued;

    public async Task InitializeAsync() => _fake = await FakeBroker.StartAsync();

    public async Task DisposeAsync() => await _fake.DisposeAsync();

    private BrokerClientOptions Options() => new()
    {
        TokenProvider = _ => ValueTask.FromResult($"token-{Interlocked.Increment(ref _issued)}"),
        Reconnect = Waits.Fast,
    };

    private static Task Authed(FakeConnection c, JsonObject auth) =>
        c.SendAsync(new JsonObject { ["type"] = "authed", ["id"] = (string?)auth["id"], ["sub"] = "alice", ["exp"] = 1_900_000_000 });

    [Fact]
    public async Task The_token_is_the_first_frame_and_the_client_is_connected_once_it_is_accepted()
    {
        var connecting = BrokerClient.ConnectAsync(_fake.WsUri, Options());
        var c1 = await _fake.NextConnectionAsync();
        var auth = await c1.ExpectAsync("auth");
        Assert.Equal("token-1", (string?)auth["token"]);
        Assert.False(c1.Query.ContainsKey("token")); // never in the URL
        Assert.False(connecting.IsCompleted);
        await Authed(c1, auth);
        await using var client = await connecting.WaitAsync(FakeBroker.Timeout);
        Assert.Equal("alice", client.Subject);

        // The broker announces the expiry: a fresh token replaces the old one on the same connection.
        await c1.SendAsync(new JsonObject { ["type"] = "token_expiring", ["exp"] = 1_900_000_000 });
        var refresh = await c1.ExpectAsync("auth");
        Assert.Equal("token-2", (string?)refresh["token"]);
        await Authed(c1, refresh);
    }

    [Fact]
    public async Task A_refused_token_stops_the_client()
    {
        var connecting = BrokerClient.ConnectAsync(_fake.WsUri, Options());
        var c1 = await _fake.NextConnectionAsync();
        var auth = await c1.ExpectAsync("auth");
        await c1.SendAsync(new JsonObject { ["type"] = "error", ["id"] = (string?)auth["id"], ["code"] = "unauthorized", ["message"] = "bad signature" });
        await c1.CloseAsync(1008, "unauthorized");
        var e = await Assert.ThrowsAsync<BrokerClosedException>(() => connecting.WaitAsync(FakeBroker.Timeout));
        Assert.Equal(1008, e.Info.CloseCode);
        Assert.Contains("bad signature", e.Info.Reason);
        Assert.True(await _fake.NoConnectionWithinAsync(TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task A_token_that_expired_without_refresh_reconnects_with_a_fresh_one()
    {
        var connecting = BrokerClient.ConnectAsync(_fake.WsUri, Options());
        var c1 = await _fake.NextConnectionAsync();
        await Authed(c1, await c1.ExpectAsync("auth"));
        await using var client = await connecting.WaitAsync(FakeBroker.Timeout);
        await c1.CloseAsync(1008, "token_expired");
        var c2 = await _fake.NextConnectionAsync();
        Assert.Equal("token-2", (string?)(await c2.ExpectAsync("auth"))["token"]);
    }
}
