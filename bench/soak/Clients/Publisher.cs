using Broker.Client;

namespace Broker.Soak.Clients;

/// <summary>
/// A publisher as a service would write one with the client library: a stable client identity
/// (<c>?client=</c>), up to <c>window</c> publishes awaiting their ack, paced; the library resends
/// every unacknowledged publish with its id after a reconnect (to the next node) and after
/// <c>unavailable</c>, so the broker must write each once. Every ack is kept with its time.
/// </summary>
public sealed class Publisher : IAsyncDisposable
{
    private readonly BrokerClient _client;
    private readonly SemaphoreSlim _window;
    private readonly int _windowSize;
    private readonly int _padding;

    public Publisher(string name, string clientId, string topic, string? key, IReadOnlyList<Uri> endpoints, int window, int padding)
    {
        Name = name;
        Topic = topic;
        Key = key;
        _windowSize = window;
        _window = new SemaphoreSlim(window);
        _padding = padding;
        _client = new BrokerClient(endpoints, new BrokerClientOptions
        {
            ClientId = clientId,
            Reconnect = SoakClients.Reconnect,
            MaxPendingPublishes = Math.Max(window, 1),
        });
        Stats.Attach(_client);
    }

    public string Name { get; }
    public string Topic { get; }
    public string? Key { get; }
    public string ClientId => _client.ClientId;
    public ConnectionStats Stats { get; } = new();

    /// <summary>Every publish and ack.</summary>
    public PublishBook Book { get; } = new();

    public Task ConnectAsync(CancellationToken ct) => _client.ConnectAsync(ct);

    /// <summary>
    /// Publishes one message every <paramref name="pace"/> (as fast as the window allows when zero)
    /// until <paramref name="stop"/> or <paramref name="count"/> messages; then returns (the last
    /// ones may still await their acks: <see cref="FlushAsync"/>).
    /// </summary>
    public async Task RunAsync(TimeSpan pace, long count, CancellationToken stop)
    {
        var due = Clock.Now;
        for (long seq = 0; seq < count && !stop.IsCancellationRequested; seq++)
        {
            try
            {
                await _window.WaitAsync(stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var record = Book.Add(Topic, new MsgId(Name, seq));
            Task<Ack> publish;
            try
            {
                // Never cancelled: a publish on its way must end with an answer the checker can compare with the log.
                publish = _client.PublishAsync(Topic, Payload.Encode(record.Id, _padding), Key, CancellationToken.None);
            }
            catch (Exception e)
            {
                Book.Refused(record, e.GetType().Name + ": " + e.Message);
                _window.Release();
                continue;
            }
            _ = publish.ContinueWith(t => Complete(record, t), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            if (pace <= TimeSpan.Zero) continue;
            due += pace.TotalSeconds;
            var wait = due - Clock.Now;
            if (wait < -1) due = Clock.Now; // fell behind (an outage): no burst to catch up
            else if (wait > 0)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(wait), stop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void Complete(PublishRecord record, Task<Ack> t)
    {
        if (t.IsCompletedSuccessfully) Book.Ack(record, Clock.Now, t.Result.Pos);
        else Book.Refused(record, t.Exception?.InnerException is { } e ? e.GetType().Name + ": " + e.Message : "cancelled");
        _window.Release();
    }

    /// <summary>Waits (bounded) until every publish made has its answer; false when some still wait.</summary>
    public async Task<bool> FlushAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var taken = 0;
        try
        {
            for (; taken < _windowSize; taken++) await _window.WaitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        finally
        {
            if (taken > 0) _window.Release(taken);
        }
    }

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}

/// <summary>Client settings every soak client shares.</summary>
public static class SoakClients
{
    /// <summary>
    /// Quicker than the library's default (10 s at most between attempts) so that an outage the
    /// soak measures is the broker's, not a client's backoff.
    /// </summary>
    public static readonly ReconnectOptions Reconnect = new()
    {
        InitialDelay = TimeSpan.FromMilliseconds(100),
        MaxDelay = TimeSpan.FromSeconds(2),
    };
}
