using System.Text.Json;
using Broker.Client;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// <see cref="BrokerClient"/>s for tests that are ordinary clients of the broker (publish,
/// subscribe, replay, sessions) — the library every application uses, so the whole suite exercises
/// it. Tests of the wire protocol itself use <see cref="WsClient"/>. Every wait here is bounded:
/// connecting, publishing and each message of <see cref="TakeAsync"/> by <see cref="Timeout"/>.
/// </summary>
public static class BrokerClients
{
    /// <summary>How long a connect, a publish, or the wait for the next message may take.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Reconnects quickly enough for tests, still with backoff and jitter.</summary>
    public static ReconnectOptions QuickReconnect { get; } = new() { InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(1) };

    /// <summary>Options for a test client: <see cref="QuickReconnect"/>, and the identity or session when given.</summary>
    public static BrokerClientOptions Options(string? clientId = null, string? session = null) =>
        new() { ClientId = clientId, Session = session, Reconnect = QuickReconnect };

    /// <summary>A client connected to <paramref name="broker"/>.</summary>
    /// <param name="beforeConnect">Runs before connecting: declare subscriptions there that a durable session restores.</param>
    public static Task<BrokerClient> ClientAsync(this TestBroker broker, BrokerClientOptions? options = null, Action<BrokerClient>? beforeConnect = null) =>
        ConnectAsync([broker.WsUri], options, beforeConnect);

    /// <summary>A client connected to the first of <paramref name="endpoints"/>; each reconnect goes to the next.</summary>
    public static async Task<BrokerClient> ConnectAsync(IReadOnlyList<Uri> endpoints, BrokerClientOptions? options = null, Action<BrokerClient>? beforeConnect = null)
    {
        var client = new BrokerClient(endpoints, options ?? Options());
        beforeConnect?.Invoke(client);
        // A refused or unreachable broker would be retried for ever: the test fails instead.
        using var cts = new CancellationTokenSource(Timeout);
        await client.ConnectAsync(cts.Token);
        return client;
    }

    /// <summary>Publishes <paramref name="data"/> serialised as JSON and returns the acknowledged position.</summary>
    public static async Task<string> PublishJsonAsync(this BrokerClient client, string topic, object? data, string? key = null)
    {
        using var cts = new CancellationTokenSource(Timeout);
        return (await client.PublishAsync(topic, JsonSerializer.SerializeToElement(data), key, cts.Token)).Pos;
    }

    /// <summary><see cref="BrokerClient.SubscribeAsync"/> within <see cref="Timeout"/>.</summary>
    public static async Task<BrokerSubscription> SubscribeWithinAsync(this BrokerClient client, string topic, SubscribeOptions? options = null)
    {
        using var cts = new CancellationTokenSource(Timeout);
        return await client.SubscribeAsync(topic, options, cts.Token);
    }

    /// <summary>
    /// The next <paramref name="count"/> messages of <paramref name="subscription"/>, each within
    /// <paramref name="timeout"/> of the one before (default <see cref="Timeout"/>).
    /// </summary>
    public static async Task<List<BrokerMessage>> TakeAsync(this BrokerSubscription subscription, int count, TimeSpan? timeout = null)
    {
        var got = new List<BrokerMessage>(count);
        if (count == 0) return got;
        var wait = timeout ?? Timeout;
        using var cts = new CancellationTokenSource(wait);
        try
        {
            // A cancelled wait takes no message from the subscription's buffer: a later TakeAsync sees it.
            await foreach (var m in subscription.WithCancellation(cts.Token))
            {
                got.Add(m);
                if (got.Count == count) return got;
                cts.CancelAfter(wait);
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"{subscription.Topic}: {got.Count} of {count} messages, then none within {wait}: {string.Join(" ", got)}");
        }
        throw new InvalidOperationException($"{subscription.Topic}: the subscription ended after {got.Count} of {count} messages");
    }

    /// <summary>The next message of <paramref name="subscription"/>.</summary>
    public static async Task<BrokerMessage> NextAsync(this BrokerSubscription subscription, TimeSpan? timeout = null) =>
        (await subscription.TakeAsync(1, timeout))[0];

    /// <summary>
    /// Nothing more was delivered to <paramref name="subscription"/>: a ping's pong came back and no
    /// message had arrived before it (the client buffers a connection's frames in order).
    /// </summary>
    public static async Task AssertNothingMoreAsync(this BrokerSubscription subscription, BrokerClient client)
    {
        using var stop = new CancellationTokenSource();
        await using var messages = subscription.GetAsyncEnumerator(stop.Token);
        var next = messages.MoveNextAsync().AsTask();
        using (var cts = new CancellationTokenSource(Timeout)) await client.PingAsync(cts.Token);
        // A message buffered before the pong has completed the wait already; cancelling ends one that had not.
        await stop.CancelAsync();
        bool more;
        try
        {
            more = await next.WaitAsync(Timeout);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        Assert.Fail(more ? $"{subscription.Topic}: a message beyond those expected: {messages.Current}" : $"{subscription.Topic}: the subscription ended");
    }

    /// <summary>The <c>int</c> property <paramref name="name"/> of the message's data.</summary>
    public static int Int(this BrokerMessage message, string name) => message.Data.GetProperty(name).GetInt32();

    /// <summary>The <c>string</c> property <paramref name="name"/> of the message's data.</summary>
    public static string? Str(this BrokerMessage message, string name) => message.Data.GetProperty(name).GetString();
}
