using Broker.Protocol;
using Broker.Soak.Check;
using Broker.Soak.Clients;

namespace Broker.IntegrationTests;

/// <summary>
/// The soak's checker on logs and deliveries made up here: each kind of fault it must report is
/// counted, and a run without faults is all zeros (a checker that cannot fail proves nothing).
/// </summary>
public sealed class SoakCheckerTests
{
    private const string Topic = "soak.t0";

    /// <summary>Partition 0 of <see cref="Topic"/>: record i is message p#i with id "i" of client "c", unless given.</summary>
    private static LogSnapshot Log(params (long S, string Id)[] records) =>
        new(new Dictionary<string, List<List<LogRecord>>>
        {
            [Topic] = [[.. records.Select((r, offset) => new LogRecord(Topic, 0, offset, new MsgId("p", r.S), "c", r.Id, null))]],
        }, []);

    private static LogSnapshot Log(int count) => Log([.. Enumerable.Range(0, count).Select(i => ((long)i, i.ToString()))]);

    private static string Pos(long offset) => Position.Single(offset + 1).Encode();

    private static PublishRecord Acked(long s, long offset) => new(Topic, new MsgId("p", s), 0) { AckPos = Pos(offset), AckAt = 1 };

    private static SubscriberStream Stream(IEnumerable<long> delivered, string? after = null, bool strict = true, bool complete = true)
    {
        var stream = new SubscriberStream("sub", 1, Topic, after, strict) { Complete = complete };
        foreach (var s in delivered) stream.Add(new MsgId("p", s), Pos(s), afterGap: false);
        return stream;
    }

    private static Checker Check(LogSnapshot log, IEnumerable<PublishRecord>? acks = null, IEnumerable<SubscriberStream>? streams = null,
        IEnumerable<Claim>? notStored = null, IEnumerable<Claim>? cut = null)
    {
        var checker = new Checker();
        checker.Run(log, acks ?? [], notStored ?? [], [], cut ?? [], streams ?? []);
        return checker;
    }

    [Fact]
    public void A_run_where_every_ack_is_in_the_log_once_and_every_subscriber_got_everything_in_order_passes()
    {
        var checker = Check(Log(5), [.. Enumerable.Range(0, 5).Select(i => Acked(i, i))], [Stream([0, 1, 2, 3, 4])]);
        Assert.True(checker.Passed, string.Join("; ", checker.Figures.Where(f => f.Failed).Select(f => f.Label)));
        Assert.Equal(5, checker.Acknowledged.Value);
        Assert.Equal(5, checker.Deliveries.Value);
    }

    [Fact]
    public void An_ack_whose_message_is_not_in_the_log_or_elsewhere_in_it_is_reported()
    {
        var checker = Check(Log(3), [Acked(0, 0), Acked(1, 2), Acked(7, 3)]);
        Assert.Equal(1, checker.LostAcked.Value);   // p#7
        Assert.Equal(1, checker.WrongAckPos.Value); // p#1 is at offset 1, not 2
        Assert.False(checker.Passed);
    }

    [Fact]
    public void The_same_client_and_id_twice_in_the_log_is_written_twice()
    {
        var checker = Check(Log((0, "0"), (1, "1"), (1, "1"), (2, "2")));
        Assert.Equal(1, checker.WrittenTwice.Value);
    }

    [Fact]
    public void A_subscriber_that_misses_repeats_or_reorders_records_is_reported()
    {
        var log = Log(6);
        Assert.Equal(2, Check(log, streams: [Stream([0, 1, 3, 4])]).LostUndelivered.Value);      // 2 in the middle, 5 at the end
        Assert.Equal(1, Check(log, streams: [Stream([0, 1, 2, 2, 3, 4, 5])]).DeliveredTwice.Value);
        Assert.Equal(1, Check(log, streams: [Stream([0, 2, 1, 3, 4, 5])]).OutOfOrder.Value);
        Assert.Equal(1, Check(log, streams: [Stream([0, 1, 2, 3, 4, 5, 9])]).Phantom.Value);
    }

    [Fact]
    public void A_life_resumed_after_a_position_must_continue_right_after_it_and_only_an_incomplete_one_may_stop_early()
    {
        var log = Log(6);
        Assert.True(Check(log, streams: [Stream([3, 4, 5], after: Pos(2))]).Passed);
        Assert.Equal(1, Check(log, streams: [Stream([4, 5], after: Pos(2))]).LostUndelivered.Value);
        Assert.Equal(1, Check(log, streams: [Stream([2, 3, 4, 5], after: Pos(2))]).DeliveredTwice.Value);
        var lenient = Check(log, streams: [Stream([2, 3, 4, 5], after: Pos(2), strict: false)]);
        Assert.True(lenient.Passed);
        Assert.Equal(1, lenient.RedeliveredBeforeResume.Value);
        Assert.True(Check(log, streams: [Stream([0, 1, 2], complete: false)]).Passed);
    }

    [Fact]
    public void A_refused_id_or_a_cut_off_frame_found_in_the_log_is_reported()
    {
        var log = Log((0, "0.0"), (1, "1.0"), (1, "1.1"));
        var checker = Check(log, notStored: [new Claim(Topic, "c", "1.0", "unavailable"), new Claim(Topic, "c", "2.0", "unavailable")],
            cut: [new Claim(Topic, "c", "0.0", "cut off")]);
        Assert.Equal(1, checker.UnavailableInLog.Value);
        Assert.Equal(1, checker.SameMessageTwice.Value);
        Assert.Equal(1, checker.CutInLog.Value);
        Assert.Equal(2, checker.RefusedAnswers.Value);
    }

    [Fact]
    public void A_log_that_retention_truncated_cannot_pass()
    {
        var checker = new Checker();
        checker.Run(new LogSnapshot(new Dictionary<string, List<List<LogRecord>>> { [Topic] = [[]] }, [$"{Topic}[0] starts at 10"]), [], [], [], [], []);
        Assert.False(checker.Passed);
    }
}
