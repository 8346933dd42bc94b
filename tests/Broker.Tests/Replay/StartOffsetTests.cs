using Broker.Core.Replay;
using Broker.Core.Log;
using Broker.Protocol;

namespace Broker.Tests.Replay;

public sealed class StartOffsetTests
{
    private const long Low = 100, High = 200;

    private static (long Start, bool? Recovered) Start(StartFrom from = StartFrom.Latest, Position? since = null, int? last = null, long low = Low, long high = High)
    {
        var (start, recovered) = StartOffsets.For(new SubscribeRequest("s", "t", from, since, last), new TopicHeads([low], [high]));
        return (start is null ? -1 : Assert.Single(start), recovered);
    }

    private static (long[]? Start, bool? Recovered) Starts(Position since, long[] low, long[] high) =>
        StartOffsets.For(new SubscribeRequest("s", "t", StartFrom.Latest, since, null), new TopicHeads(low, high));

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

    [Fact]
    public void Multi_partition_since_resumes_each_partition_right_after_it()
    {
        var (start, recovered) = Starts(new Position([5, 0, 7]), [0, 0, 2], [10, 3, 7]);
        Assert.Equal([5L, 0, 7], start!);
        Assert.True(recovered);
    }

    [Fact]
    public void Multi_partition_since_older_than_retention_in_one_partition_is_unrecovered_there_only()
    {
        var (start, recovered) = Starts(new Position([5, 1, 7]), [0, 2, 2], [10, 3, 9]);
        Assert.Equal([5L, 2, 7], start!); // partition 1 lost offset 1: from its oldest retained
        Assert.False(recovered);
    }

    [Fact]
    public void A_position_from_before_partitions_were_added_reads_the_new_ones_from_their_start()
    {
        var (start, recovered) = Starts(new Position([5, 6]), [0, 0, 0, 0], [10, 10, 4, 2]);
        Assert.Equal([5L, 6, 0, 0], start!);
        Assert.True(recovered);
        // ...unless retention already deleted records of a new partition.
        var (trimmed, lost) = Starts(new Position([5, 6]), [0, 0, 1, 0], [10, 10, 4, 2]);
        Assert.Equal([5L, 6, 1, 0], trimmed!);
        Assert.False(lost);
    }

    [Fact]
    public void A_position_with_more_partitions_than_the_topic_does_not_fit() =>
        Assert.Null(Starts(new Position([1, 1, 1]), [0, 0], [5, 5]).Start);

    [Fact]
    public void Latest_earliest_and_last_per_partition()
    {
        TopicHeads heads = new([0, 4, 9], [10, 6, 9]);
        Assert.Equal([10L, 6, 9], StartOffsets.For(new SubscribeRequest("s", "t", StartFrom.Latest, null, null), heads).Start!);
        Assert.Equal([0L, 4, 9], StartOffsets.For(new SubscribeRequest("s", "t", StartFrom.Earliest, null, null), heads).Start!);
        Assert.Equal([7L, 4, 9], StartOffsets.For(new SubscribeRequest("s", "t", StartFrom.Latest, null, 3), heads).Start!);
    }
}
