using System.Threading.Channels;

namespace Broker.Core.Log;

/// <summary>
/// A few dedicated threads for Kafka client calls that block (watermark queries): they must not
/// run on the thread pool, where many at once would starve connections, actors and timers.
/// </summary>
public sealed class BlockingCalls : IDisposable
{
    private readonly Channel<Action> _work = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = false });
    private readonly Thread[] _threads;
    private readonly TimeSpan _stopTimeout;

    /// <param name="stopTimeout">How long <see cref="Dispose"/> waits for each thread to finish its call.</param>
    public BlockingCalls(int threads, string name, TimeSpan stopTimeout)
    {
        _stopTimeout = stopTimeout;
        _threads = new Thread[threads];
        for (var i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Run) { IsBackground = true, Name = $"{name}-{i}" };
            _threads[i].Start();
        }
    }

    public Task<T> Run<T>(Func<T> call, CancellationToken ct = default)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_work.Writer.TryWrite(() =>
            {
                if (ct.IsCancellationRequested)
                {
                    tcs.TrySetCanceled(ct);
                    return;
                }
                try { tcs.TrySetResult(call()); }
                catch (Exception e) { tcs.TrySetException(e); }
            }))
            tcs.TrySetException(new ObjectDisposedException(nameof(BlockingCalls)));
        return tcs.Task.WaitAsync(ct);
    }

    private void Run()
    {
        var reader = _work.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            while (reader.TryRead(out var work)) work();
        }
    }

    public void Dispose()
    {
        _work.Writer.TryComplete();
        foreach (var t in _threads) t.Join(_stopTimeout);
    }
}
