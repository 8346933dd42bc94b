using Akka.Configuration;
using Broker.Core.Fanout;
using Broker.Core.Settings;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Fanout;

/// <summary>The offset index of a shared Kafka topic: exact answers or none.</summary>
public sealed class OffsetIndexTests
{
    /// <summary>An answer the index must give.</summary>
    private static long[] Exact(long[]? offsets)
    {
        Assert.NotNull(offsets);
        return offsets;
    }

    /// <summary>An index of two partitions that starts at offset 0 of both.</summary>
    private static OffsetIndex Index(int perTopic = 4, int maxTopics = 100) => new([0, 0], perTopic, maxTopics);

    [Fact]
    public void A_topic_with_at_least_n_offsets_answers_its_last_n_oldest_first()
    {
        var index = Index();
        for (var o = 0; o < 10; o++) index.Add(0, o % 2 == 0 ? "t.a" : "t.b", o);
        Assert.Equal([4L, 6, 8], Exact(index.Last("t.a", 0, 3, low: 0)));
        Assert.Equal([3L, 5, 7, 9], Exact(index.Last("t.b", 0, 4, low: 0)));
    }

    [Fact]
    public void The_ring_keeps_the_last_offsets_and_more_than_it_holds_is_not_answered()
    {
        var index = Index(perTopic: 4);
        for (var o = 0; o < 10; o++) index.Add(0, "t.a", o);
        Assert.Equal([6L, 7, 8, 9], Exact(index.Last("t.a", 0, 4, low: 0)));
        // Five were asked for: the fifth last (offset 5) was dropped from the ring.
        Assert.Null(index.Last("t.a", 0, 5, low: 0));
    }

    [Fact]
    public void Fewer_than_n_are_all_of_them_when_the_index_has_read_the_partition_since_its_first_retained_offset()
    {
        var index = Index();
        index.Add(0, "t.a", 3);
        index.Add(0, "t.b", 4);
        Assert.Equal([3L], Exact(index.Last("t.a", 0, 10, low: 0)));
        Assert.Empty(Exact(index.Last("t.none", 0, 10, low: 0))); // never written: none
        Assert.Empty(Exact(index.Last("t.a", 0, 0, low: 0)));
    }

    [Fact]
    public void An_index_that_started_after_the_first_retained_offset_answers_only_n_it_holds()
    {
        var index = new OffsetIndex([100, 0], 4, 100);
        index.Add(0, "t.a", 100);
        index.Add(0, "t.a", 101);
        Assert.Equal([101L], Exact(index.Last("t.a", 0, 1, low: 0)));
        Assert.Null(index.Last("t.a", 0, 3, low: 0)); // it may have records before 100
        Assert.Null(index.Last("t.none", 0, 3, low: 0));
        Assert.Equal([100L, 101], Exact(index.Last("t.a", 0, 3, low: 100))); // retention removed everything before
    }

    [Fact]
    public void Offsets_below_the_first_retained_offset_are_not_answered()
    {
        var index = Index(perTopic: 4);
        foreach (var o in new long[] { 1, 5, 9 }) index.Add(0, "t.a", o);
        Assert.Equal([5L, 9], Exact(index.Last("t.a", 0, 3, low: 4)));
        // The ring dropped offsets and the retained records begin after its oldest: still exact.
        for (var o = 10; o < 20; o++) index.Add(0, "t.a", o);
        Assert.Equal([18L, 19], Exact(index.Last("t.a", 0, 2, low: 18)));
        Assert.Equal([16L, 17, 18, 19], Exact(index.Last("t.a", 0, 4, low: 0)));
    }

    [Fact]
    public void The_least_recently_written_topic_is_forgotten_and_a_forgotten_topic_is_not_answered()
    {
        var index = Index(maxTopics: 2);
        index.Add(0, "t.a", 0);
        index.Add(0, "t.b", 1);
        index.Add(0, "t.a", 2); // t.b is now the least recently written
        index.Add(0, "t.c", 3); // t.b goes
        Assert.Equal(2, index.Topics);
        Assert.Equal(1, index.Evicted);
        Assert.Null(index.Last("t.b", 0, 1, low: 0));
        Assert.Null(index.Last("t.never", 0, 1, low: 0)); // it may have been forgotten too
        Assert.Equal([0L, 2], Exact(index.Last("t.a", 0, 5, low: 0))); // never forgotten: complete
        // Created after the eviction: complete only after t.b's last record (the index cannot tell t.c was never forgotten).
        Assert.Null(index.Last("t.c", 0, 5, low: 0));
        Assert.Equal([3L], Exact(index.Last("t.c", 0, 5, low: 2)));
        Assert.Empty(Exact(index.Last("t.never", 0, 1, low: 2)));     // nothing forgotten has records from 2 on
        // Another partition is not affected.
        Assert.Empty(Exact(index.Last("t.other", 1, 1, low: 0)));
    }

    [Fact]
    public void A_topic_written_again_after_it_was_forgotten_is_complete_only_from_then()
    {
        var index = Index(maxTopics: 1);
        index.Add(0, "t.a", 0);
        index.Add(0, "t.b", 1); // t.a goes
        index.Add(0, "t.a", 2); // t.b goes; t.a is back without offset 0
        Assert.Equal([2L], Exact(index.Last("t.a", 0, 1, low: 0)));
        Assert.Null(index.Last("t.a", 0, 2, low: 0));
        Assert.Equal([2L], Exact(index.Last("t.a", 0, 2, low: 2)));
    }

    [Fact]
    public void A_backfill_goes_in_front_of_what_the_feed_added_since_it_started()
    {
        var live = new OffsetIndex([0, 50], 4, 100);
        live.Add(1, "t.a", 55);
        live.Add(1, "t.live", 56);
        var backfill = new OffsetIndex([0, 10], 4, 100);
        backfill.Add(1, "t.a", 12);
        backfill.Add(1, "t.a", 20);
        backfill.Add(1, "t.old", 30);
        Assert.True(live.Merge(1, 50, backfill));
        Assert.Equal(10, live.IndexedFrom(1));
        Assert.Equal([12L, 20, 55], Exact(live.Last("t.a", 1, 3, low: 10)));
        Assert.Equal([30L], Exact(live.Last("t.old", 1, 3, low: 10)));
        Assert.Equal([56L], Exact(live.Last("t.live", 1, 3, low: 10))); // not in the backfill: none before 50
        Assert.Null(live.Last("t.a", 1, 5, low: 0)); // the backfill began at 10
        // The backfill's topics are older than the live ones: the first to go.
        Assert.False(live.Merge(1, 50, backfill)); // the index starts at 10 now
    }

    [Fact]
    public void A_backfill_that_does_not_fit_leaves_its_topics_unknown_rather_than_absent()
    {
        var live = new OffsetIndex([50], 4, 2);
        live.Add(0, "t.live", 51);
        var backfill = new OffsetIndex([0], 4, 10);
        backfill.Add(0, "t.x", 1);
        backfill.Add(0, "t.y", 2);
        Assert.True(live.Merge(0, 50, backfill));
        Assert.Equal([2L], Exact(live.Last("t.y", 0, 5, low: 0))); // the most recent backfilled topic fits
        Assert.Null(live.Last("t.x", 0, 5, low: 0));        // no room: not indexed, not "none"
        Assert.Empty(Exact(live.Last("t.x", 0, 5, low: 50)));     // but it has nothing since the feed started
    }

    [Fact]
    public void A_reset_partition_starts_afresh()
    {
        var index = Index();
        index.Add(0, "t.a", 5);
        index.Add(1, "t.b", 5);
        index.Reset(0, 100);
        Assert.Null(index.Last("t.a", 0, 1, low: 0));
        Assert.Empty(Exact(index.Last("t.a", 0, 1, low: 100)));
        Assert.Equal([5L], Exact(index.Last("t.b", 1, 1, low: 0)));
    }

    [Theory]
    [InlineData(new long[] { }, 256, new long[] { })]
    [InlineData(new long[] { 7 }, 256, new long[] { 7, 8 })]
    [InlineData(new long[] { 1, 2, 3 }, 0, new long[] { 1, 4 })]
    [InlineData(new long[] { 1, 3, 10 }, 1, new long[] { 1, 4, 10, 11 })]
    [InlineData(new long[] { 0, 256, 1000, 1100 }, 256, new long[] { 0, 257, 1000, 1101 })]
    [InlineData(new long[] { 0, 258 }, 256, new long[] { 0, 1, 258, 259 })]
    public void Offsets_close_together_are_read_as_one_range(long[] offsets, int gap, long[] bounds)
    {
        var ranges = OffsetIndex.Coalesce(offsets, gap);
        Assert.Equal(bounds, ranges.SelectMany(r => new[] { r.From, r.To }));
    }

    [Theory]
    [InlineData(1000, 1000, 10, 20, true)]     // 1000 records in 10 ms: 1000 more take 10 ms of the 20 left
    [InlineData(1000, 5000, 10, 20, false)]    // 5000 more would take 50 ms
    [InlineData(0, 10, 2, 500, true)]          // not moving yet: a little grace
    [InlineData(0, 10, 150, 500, true)]        // not moving, but only a few behind
    [InlineData(0, 5000, 150, 500, false)]     // stalled far behind
    [InlineData(1000, 1, 10, 0, false)]        // no time left
    public void A_last_n_waits_for_the_feed_only_when_its_pace_gets_it_there_in_time(long read, long left, int tookMs, int timeMs, bool waits) =>
        Assert.Equal(waits, FeedHub.CatchesUp(read, left, TimeSpan.FromMilliseconds(tookMs), TimeSpan.FromMilliseconds(timeMs)));

    [Fact]
    public void The_settings_defaults_come_from_broker_conf()
    {
        var s = TestDefaults.OffsetIndex;
        Assert.True(s.Enabled);
        Assert.Equal(100, s.OffsetsPerTopic);
        Assert.Equal(200_000, s.MaxTopics);
        Assert.Equal(2_000_000, s.BackfillRecords);
        Assert.Equal(256, s.CoalesceGap);
    }

    [Theory]
    [InlineData("enabled", "perhaps")]
    [InlineData("offsets-per-topic", "0")]
    [InlineData("max-topics", "0")]
    [InlineData("backfill-records", "-1")]
    [InlineData("catch-up-wait", "soon")]
    [InlineData("coalesce-gap", "-5")]
    public void A_bad_value_names_its_key(string key, string value)
    {
        var config = ConfigurationFactory.ParseString($"broker.fanout.offset-index.{key} = \"{value}\"").WithFallback(BrokerDefaults.Config);
        var e = Assert.Throws<SettingsException>(() => OffsetIndexSettings.Bind(new SettingsReader(config)));
        Assert.Equal($"broker.fanout.offset-index.{key}", e.Key);
    }
}
