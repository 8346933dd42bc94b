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
            // A client that does not read holds the node in its drain (up to shutdown-deadline)
            // after the others are closed: new connections come in while the node is still up.
            await using var stuck = await WsClient.ConnectAsync(broker.WsUri, startReading: false);
            var stopping = broker.App.StopAsync();
            var (statusA, reasonA) = await a.Closed.WaitAsync(TimeSpan.FromSeconds(30));
            var (statusB, _) = await b.Closed.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, statusA);
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, statusB);
            Assert.False(string.IsNullOrEmpty(reasonA));

            // New connections are refused while the node drains: its port no longer accepts them,
            // or (a node draining for the admin API) the upgrade is answered 503.
            Assert.False(stopping.IsCompleted, "the node stopped before a new connection could be tried");
            var refused = await Assert.ThrowsAsync<WebSocketException>(() => broker.ConnectAsync());
            Assert.True(refused.Message.Contains("503") || refused.GetBaseException() is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused },
                refused.ToString());
            await stopping.WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            await broker.App.DisposeAsync();
        }
    }
}
