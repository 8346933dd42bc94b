namespace Broker.Core.Log;

/// <summary>
/// Runs a query per key so that concurrent callers share it, but never one that began before they
/// asked: a caller that arrives while the key's query runs waits for the next one, which starts when
/// that one ends and answers everyone who arrived in the meantime. An answer therefore always
/// reflects the state at or after the moment of asking (a partition's end includes every record
/// acknowledged before the caller asked), and a burst of callers of one key costs one query at a
/// time instead of one each: 1,000 new topics of a multiplexed namespace starting at once query
/// their few shared partitions a handful of times, not 1,000 times through the node's query threads.
/// A failed query fails the callers of its round only. A caller's cancellation stops its wait, not
/// the query (which is bounded by its own timeout).
/// </summary>
public sealed class CoalescingQueries<TKey, T>(Func<TKey, Task<T>> query) where TKey : notnull
{
    private readonly Dictionary<TKey, Round> _rounds = new();
    private readonly Lock _gate = new();

    /// <summary>Queries in flight now (one per key at most).</summary>
    public int Running
    {
        get { lock (_gate) return _rounds.Count; }
    }

    public Task<T> RunAsync(TKey key, CancellationToken ct = default)
    {
        TaskCompletionSource<T>? start = null;
        Task<T> answer;
        lock (_gate)
        {
            if (_rounds.TryGetValue(key, out var round))
                answer = (round.Next ??= new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            else
            {
                _rounds[key] = new Round();
                start = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
                answer = start.Task;
            }
        }
        if (start is not null) _ = RunRoundsAsync(key, start);
        return answer.WaitAsync(ct);
    }

    private async Task RunRoundsAsync(TKey key, TaskCompletionSource<T> answer)
    {
        while (true)
        {
            try
            {
                answer.TrySetResult(await query(key).ConfigureAwait(false));
            }
            catch (Exception e)
            {
                answer.TrySetException(e);
            }
            lock (_gate)
            {
                var round = _rounds[key];
                if (round.Next is null)
                {
                    _rounds.Remove(key);
                    return;
                }
                answer = round.Next;
                round.Next = null;
            }
        }
    }

    /// <summary>The key's query in flight, and the callers waiting for the one after it.</summary>
    private sealed class Round
    {
        public TaskCompletionSource<T>? Next;
    }
}
