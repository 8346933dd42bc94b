using Broker.Core.Connections;
using Broker.Protocol;

namespace Broker.Tests.Connections;

public sealed class StartOffsetTests
{
    private const long Low = 100, High = 200;

    private static (long Start, bool? Recovered) Start(StartFrom from = StartFrom.Latest, Position? since = null, int? last = null, long low = Low, long high = High) =>
        Connection.StartOffset(new SubscribeRequest("s", "t", from, since, last), low, high);

    [Fact]
    public void Latest_starts_at_the_high_watermark() => Assert.Equal((High, (bool?)null), Start());

    [Fact]
    public void Earliest_starts_at_the_low_watermark() => Assert.Equal((Low, (bool?)null), Start(StartFrom.Earliest));

    [Theory]
    [InlineData(0, High)]
    [InlineData(1, High - 1)]
    [InlineData(50, High - 50)]
    [InlineData(100, Low)]
    [InlineData(101, Low)]
    [InlineData(10_000, Low)]
    public void Last_n_starts_n_before_high_but_not_below_low(int last, long expected)
    {
        Assert.Equal((expected, (bool?)null), Start(last: last));
        Assert.Equal((expected, (bool?)null), Start(StartFrom.Earliest, last: last)); // last wins over from
    }

    [Fact]
    public void Last_on_an_empty_topic_starts_at_high() => Assert.Equal((5L, (bool?)null), Start(last: 10, low: 5, high: 5));

    [Theory]
    [InlineData(Low)]
    [InlineData(Low + 1)]
    [InlineData(150)]
    [InlineData(High - 1)]
    [InlineData(High)]
    public void Since_inside_the_retained_range_resumes_right_after_it(long next)
    {
        Assert.Equal((next, (bool?)true), Start(since: Position.Single(next)));
        // since wins over from and last
        Assert.Equal((next, (bool?)true), Start(StartFrom.Earliest, Position.Single(next), last: 3));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(Low - 1)]
    public void Since_older_than_retention_starts_at_low_unrecovered(long next) =>
        Assert.Equal((Low, (bool?)false), Start(since: Position.Single(next)));

    [Theory]
    [InlineData(High + 1)]
    [InlineData(long.MaxValue)]
    public void Since_ahead_of_the_log_starts_at_low_unrecovered(long next) =>
        Assert.Equal((Low, (bool?)false), Start(since: Position.Single(next)));

    [Fact]
    public void Since_on_an_empty_fresh_topic()
    {
        Assert.Equal((0L, (bool?)true), Start(since: Position.Single(0), low: 0, high: 0));
        Assert.Equal((0L, (bool?)false), Start(since: Position.Single(3), low: 0, high: 0));
    }

    [Fact]
    public void Multi_partition_since_does_not_fit_a_single_partition_topic()
    {
        Assert.Equal(-1, Start(since: new Position([150, 150])).Start);
        Assert.Equal(-1, Start(since: new Position([Low, Low, Low])).Start);
    }
}
