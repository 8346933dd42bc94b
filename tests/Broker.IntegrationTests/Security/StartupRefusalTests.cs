using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests.Security;

/// <summary>
/// A node that would be open to the network without protection refuses to start: one line on
/// stderr and exit code 2, before anything listens (so nothing here binds beyond loopback).
/// </summary>
public sealed class StartupRefusalTests
{
    private static async Task<(int Code, string Output)> RunAsync(string name, Dictionary<string, string> environment)
    {
        await using var node = BrokerProcess.Start(name, 0, 0, [], "127.0.0.1:1", "127.0.0.1:1", environment: environment);
        var code = await node.ExitCodeAsync(TimeSpan.FromSeconds(60));
        return (code, node.Output);
    }

    [Fact]
    public async Task Anonymous_ws_on_a_non_loopback_address_refuses_to_start()
    {
        var (code, output) = await RunAsync("public-anonymous", new() { ["BROKER_HTTP_HOST"] = "0.0.0.0" });
        Assert.Equal(2, code);
        var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), l => l.StartsWith("broker:", StringComparison.Ordinal));
        Assert.Contains("broker.auth.mode", line);
    }

    [Fact]
    public async Task An_admin_api_on_a_non_loopback_address_without_a_token_refuses_to_start()
    {
        var (code, output) = await RunAsync("public-admin", new() { ["BROKER_ADMIN_HOST"] = "0.0.0.0" });
        Assert.Equal(2, code);
        Assert.Contains("broker.admin.token", output);
    }

    [Fact]
    public async Task Auth_without_signing_keys_refuses_to_start()
    {
        var (code, output) = await RunAsync("auth-no-keys", new() { ["BROKER_AUTH_MODE"] = "required" });
        Assert.Equal(2, code);
        Assert.Contains("signing keys", output);
    }
}
