using System.Net.WebSockets;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

public sealed class ShutdownTests
{
    [Fact]
    public async Task Stopping_the_node_closes_clients_with_1001_and_refuses_new_ones()
    {
        var broker = await TestBroker.StartAsync();
        try
        {
            await using var a = await broker.ConnectAsync();
            await using var b = await broker.ConnectAsync();
            await a.SubscribeAsync("shutdown.topic", "s");
            var stopping = broker.App.StopAsync();
            var (statusA, reasonA) = await a.Closed.WaitAsync(TimeSpan.FromSeconds(30));
            var (statusB, _) = await b.Closed.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, statusA);
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, statusB);
            Assert.False(string.IsNullOrEmpty(reasonA));
            await stopping.WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            await broker.App.DisposeAsync();
        }
    }
}
