namespace Broker.Tests.Infrastructure;

/// <summary>Waits for a condition with a deadline, polling it (never a fixed sleep as synchronisation).</summary>
public static class Eventually
{
    private static readonly TimeSpan PollEvery = TimeSpan.FromMilliseconds(50);

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string? what = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"not true within {timeout}: {what ?? "condition"}");
            await Task.Delay(PollEvery);
        }
    }

    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string? what = null) =>
        TrueAsync(() => Task.FromResult(condition()), timeout, what);
}
