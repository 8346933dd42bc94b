using Broker.Tests.Infrastructure;
using Broker.Core.Log;

namespace Broker.Tests.Log;

/// <summary>Concurrent callers of one key share a query, never one that began before they asked.</summary>
public sealed class CoalescingQueriesTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>A query per call that the test answers by hand, in the order the calls were made.</summary>
    private sealed class ManualQuery
    {
        private readonly List<(string Key, TaskCompletionSource<int> Answer)> _calls = [];

        public int Calls
        {
            get { lock (_calls) return _calls.Count; }
        }

        public Task<int> Query(string key)
        {
            var answer = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_calls) _calls.Add((key, answer));
            return answer.Task;
        }

        public (string Key, TaskCompletionSource<int> Answer) Call(int i)
        {
            lock (_calls) return _calls[i];
        }
    }

    [Fact]
    public async Task Callers_during_a_running_query_share_the_next_one_and_never_get_the_running_ones_answer()
    {
        var manual = new ManualQuery();
        var queries = new CoalescingQueries<string, int>(manual.Query);

        var first = queries.RunAsync("p0");
        Assert.Equal(1, manual.Calls);
        // Asked while the first query runs: its answer may predate them.
        var second = queries.RunAsync("p0");
        var third = queries.RunAsync("p0");
        Assert.Equal(1, manual.Calls);

        manual.Call(0).Answer.SetResult(10);
        Assert.Equal(10, await first.WaitAsync(Timeout));
        Assert.False(second.IsCompleted);
        // The next query began after they asked; one query answers both.
        await Eventually.TrueAsync(() => manual.Calls == 2, Timeout, "the next round started");
        manual.Call(1).Answer.SetResult(11);
        Assert.Equal(11, await second.WaitAsync(Timeout));
        Assert.Equal(11, await third.WaitAsync(Timeout));
        Assert.Equal(2, manual.Calls);
        await Eventually.TrueAsync(() => queries.Running == 0, Timeout, "nothing is left running");
    }

    [Fact]
    public async Task Keys_do_not_wait_for_each_other_and_a_failure_fails_only_its_round()
    {
        var manual = new ManualQuery();
        var queries = new CoalescingQueries<string, int>(manual.Query);

        var a = queries.RunAsync("a");
        var b = queries.RunAsync("b");
        Assert.Equal(2, manual.Calls); // one query per key at once
        var a2 = queries.RunAsync("a");

        manual.Call(0).Answer.SetException(new TimeoutException("the log did not answer"));
        await Assert.ThrowsAsync<TimeoutException>(() => a.WaitAsync(Timeout));
        await Eventually.TrueAsync(() => manual.Calls == 3, Timeout, "the next round of a started");
        Assert.Equal("a", manual.Call(2).Key);
        manual.Call(2).Answer.SetResult(2);
        Assert.Equal(2, await a2.WaitAsync(Timeout)); // its own round, which did not fail
        manual.Call(1).Answer.SetResult(1);
        Assert.Equal(1, await b.WaitAsync(Timeout));
    }

    [Fact]
    public async Task A_caller_that_stops_waiting_does_not_cancel_the_query_for_the_others()
    {
        var manual = new ManualQuery();
        var queries = new CoalescingQueries<string, int>(manual.Query);
        var first = queries.RunAsync("p");
        using var cancel = new CancellationTokenSource();
        var impatient = queries.RunAsync("p", cancel.Token);
        var patient = queries.RunAsync("p");
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => impatient);

        manual.Call(0).Answer.SetResult(1);
        await Eventually.TrueAsync(() => manual.Calls == 2, Timeout, "the next round started");
        manual.Call(1).Answer.SetResult(2);
        Assert.Equal(2, await patient.WaitAsync(Timeout));
        Assert.Equal(1, await first.WaitAsync(Timeout));
    }
}
