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

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(15)]
    [InlineData(100)]
    [InlineData(1234)]
    public void Subject_buckets_refill_exactly_their_rate(int perSecond)
    {
        var options = Quotas.Bucket(perSecond);
        Assert.Equal(perSecond, options.TokenLimit);
        Assert.Equal(perSecond, options.TokensPerPeriod / options.ReplenishmentPeriod.TotalSeconds, perSecond * 1e-5); // the period is whole ticks
        Assert.InRange(options.ReplenishmentPeriod, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1));
    }
}
