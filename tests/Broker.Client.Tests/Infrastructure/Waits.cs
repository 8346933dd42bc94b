using System.Collections.Concurrent;

namespace Broker.Client.Tests.Infrastructure;

/// <summary>Bounded waits for the client side of the tests.</summary>
public static class Waits
{
    /// <summary>The next message of an enumeration (fails after the timeout or when it ends).</summary>
    public static async Task<BrokerMessage> NextAsync(this IAsyncEnumerator<BrokerMessage> messages, TimeSpan? timeout = null)
    {
        Assert.True(await messages.MoveNextAsync().AsTask().WaitAsync(timeout ?? FakeBroker.Timeout), "the enumeration ended");
        return messages.Current;
    }

    /// <summary>Records the client's state changes and waits for one.</summary>
    public sealed class StateLog
    {
        private readonly ConcurrentQueue<BrokerStateChangedEventArgs> _all = new();
        private readonly SemaphoreSlim _signal = new(0);

        public StateLog(BrokerClient client) => client.StateChanged += (_, e) =>
        {
            _all.Enqueue(e);
            _signal.Release();
        };

        public IReadOnlyCollection<BrokerStateChangedEventArgs> All => _all;

        public async Task<BrokerStateChangedEventArgs> WaitForAsync(BrokerConnectionState state, Func<BrokerStateChangedEventArgs, bool>? where = null)
        {
            using var cts = new CancellationTokenSource(FakeBroker.Timeout);
            while (true)
            {
                var match = _all.FirstOrDefault(e => e.State == state && (where is null || where(e)));
                if (match is not null) return match;
                try
                {
                    await _signal.WaitAsync(cts.Token);
                }
                catch (OperationCanceledException)
                {
                    throw new TimeoutException($"no {state} state change; saw {string.Join(", ", _all.Select(e => e.State))}");
                }
            }
        }
    }

    public static readonly ReconnectOptions Fast = new() { InitialDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) };
}
