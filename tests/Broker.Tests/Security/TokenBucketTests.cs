using Broker.Core.Security;

namespace Broker.Tests.Security;

public sealed class TokenBucketTests
{
    [Fact]
    public void A_full_bucket_gives_a_seconds_worth_then_refuses_with_the_time_until_the_next_permit()
    {
        var bucket = new TokenBucket(2); // a permit comes back every 500 ms: the checks below take far less
        Assert.True(bucket.TryTake(1, out _));
        Assert.True(bucket.TryTake(1, out _));
        Assert.False(bucket.TryTake(1, out var after));
        Assert.InRange(after, TimeSpan.FromTicks(1), TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public void A_request_larger_than_a_seconds_worth_passes_on_a_full_bucket_and_empties_it()
    {
        var bucket = new TokenBucket(1000);
        Assert.True(bucket.TryTake(5000, out _));
        Assert.False(bucket.TryTake(1, out var after));
        Assert.True(after > TimeSpan.Zero);
    }
}
