using Broker.Core.Publish;

namespace Broker.Tests.Publish;

/// <summary>The writer's bookkeeping on its own: every decision, every outcome, no Kafka.</summary>
public sealed class PublishLedgerTests
{
    private static readonly PublishKey A = new("t", "client", "a");
    private static readonly PublishKey B = new("t", "client", "b");
    private const ulong Data1 = 1, Data2 = 2;

    [Fact]
    public void A_new_publish_is_produced_and_its_retries_wait_for_the_same_ack()
    {
        var ledger = new PublishLedger<string>(10);
        Assert.Equal(Admission.Produce, ledger.Admit(A, Data1, "first", inTime: true, out _));
        Assert.Equal(Admission.Waiting, ledger.Admit(A, Data1, "retry", inTime: true, out _));
        Assert.Equal(1, ledger.InFlightCount);

        Assert.Equal(["first", "retry"], ledger.Written(A, "pos-1"));
        Assert.Equal(Admission.Duplicate, ledger.Admit(A, Data1, "later", inTime: false, out var pos));
        Assert.Equal("pos-1", pos);
        Assert.Equal((1, 0), (ledger.WrittenCount, ledger.InFlightCount));
    }

    [Fact]
    public void The_same_id_with_other_data_is_a_conflict_whether_written_in_flight_or_uncertain()
    {
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        Assert.Equal(Admission.Conflict, ledger.Admit(A, Data2, "other", inTime: true, out _)); // in flight
        ledger.Written(A, "pos-1");
        Assert.Equal(Admission.Conflict, ledger.Admit(A, Data2, "other", inTime: true, out _)); // written

        ledger.Admit(B, Data1, "b", inTime: true, out _);
        ledger.PossiblyWritten(B, partition: 0, producedSoFar: 2, now: 0);
        Assert.Equal(Admission.Conflict, ledger.Admit(B, Data2, "other", inTime: true, out _)); // uncertain
    }

    [Fact]
    public void Too_late_is_refused_unless_it_is_a_retry_of_something_written_or_in_flight()
    {
        var ledger = new PublishLedger<string>(10);
        Assert.Equal(Admission.TooLate, ledger.Admit(A, Data1, "late", inTime: false, out _));
        Assert.Equal(Admission.TooLate, ledger.Admit(null, 0, "anonymous", inTime: false, out _));
        Assert.Equal(Admission.Produce, ledger.Admit(null, 0, "anonymous", inTime: true, out _));
        Assert.Equal(0, ledger.InFlightCount); // publishes without identity are not tracked
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        Assert.Equal(Admission.Waiting, ledger.Admit(A, Data1, "retry", inTime: false, out _)); // nothing more is written
    }

    [Fact]
    public void A_refused_write_is_forgotten_so_a_retry_is_written()
    {
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        ledger.Admit(A, Data1, "retry", inTime: true, out _);
        Assert.Equal(["a", "retry"], ledger.NotWritten(A));
        Assert.Equal(Admission.Produce, ledger.Admit(A, Data1, "again", inTime: true, out _));
    }

    [Fact]
    public void An_uncertain_publish_found_in_the_log_answers_its_retries_with_the_logged_position()
    {
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        ledger.PossiblyWritten(A, partition: 0, producedSoFar: 1, now: 1_000);
        Assert.Equal(Admission.Waiting, ledger.Admit(A, Data1, "retry", inTime: true, out _));
        Assert.True(ledger.RetryWaitsForSettlement);

        var generation = ledger.BeginSettlement();
        var observed = ledger.Observe(A, Data1, "pos-7");
        Assert.False(observed.Conflict);
        Assert.Equal(["a", "retry"], observed.Waiting);
        Assert.Empty(ledger.EndSettlement(generation, answeringSince: 1_000, now: 1_001, grace: 5_000));
        Assert.Equal(Admission.Duplicate, ledger.Admit(A, Data1, "again", inTime: true, out var pos));
        Assert.Equal("pos-7", pos);
        Assert.Equal(0, ledger.UncertainCount);
    }

    [Fact]
    public void An_uncertain_publish_not_in_the_log_stays_uncertain_until_fenced_or_the_grace_is_over()
    {
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        ledger.Admit(B, Data1, "b", inTime: true, out _);
        ledger.PossiblyWritten(A, partition: 0, producedSoFar: 2, now: 1_000);
        ledger.PossiblyWritten(B, partition: 1, producedSoFar: 2, now: 1_000);
        ledger.Admit(A, Data1, "retry-a", inTime: true, out _);

        // Read back at once: not found, but a request may still be on its way: nothing is concluded.
        var first = ledger.BeginSettlement();
        Assert.Empty(ledger.EndSettlement(first, answeringSince: 1_100, now: 1_100, grace: 5_000));
        Assert.Equal(2, ledger.UncertainCount);

        // A record produced after the timeout (number 3) is acknowledged in A's partition: A can no
        // longer arrive. B's partition has no such record yet.
        ledger.Acknowledged(partition: 0, produced: 3);
        ledger.Acknowledged(partition: 1, produced: 2);
        var second = ledger.BeginSettlement();
        Assert.Equal(["a", "retry-a"], ledger.EndSettlement(second, answeringSince: 1_100, now: 1_200, grace: 5_000));
        Assert.Equal(1, ledger.UncertainCount);

        // B: the log has answered for the whole grace period since it became uncertain.
        var third = ledger.BeginSettlement();
        Assert.Equal(["b"], ledger.EndSettlement(third, answeringSince: 1_100, now: 6_100, grace: 5_000));
        Assert.Equal(0, ledger.UncertainCount);
        Assert.Equal(Admission.Produce, ledger.Admit(B, Data1, "b-again", inTime: true, out _));
    }

    [Fact]
    public void A_fence_acknowledged_while_a_read_runs_does_not_settle_it_the_record_may_lie_beyond_the_reads_end()
    {
        // The chaos soak's case: the log stalls, A's answer times out; the log resumes and writes A and
        // then record 3 after the settlement's read had fixed its end. Record 3's ack arrives before the
        // read's result: A is not in what was read, yet it is in the log — it must not be concluded
        // "not written" (its retry would be written twice).
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        ledger.PossiblyWritten(A, partition: 0, producedSoFar: 2, now: 1_000);
        ledger.Admit(A, Data1, "retry-a", inTime: true, out _);

        var reading = ledger.BeginSettlement();
        ledger.Acknowledged(partition: 0, produced: 3);
        Assert.Empty(ledger.EndSettlement(reading, answeringSince: 1_000, now: 1_100, grace: 5_000));
        Assert.Equal(1, ledger.UncertainCount);

        // The next read began after the fence was acknowledged: it covers A's place and finds it.
        var next = ledger.BeginSettlement();
        var observed = ledger.Observe(A, Data1, "7");
        Assert.Equal(["a", "retry-a"], observed.Waiting);
        Assert.False(observed.Conflict);
        Assert.Empty(ledger.EndSettlement(next, answeringSince: 1_000, now: 1_200, grace: 5_000));
        Assert.Equal(Admission.Duplicate, ledger.Admit(A, Data1, "again", inTime: true, out _));
    }

    [Fact]
    public void A_publish_that_becomes_uncertain_during_a_read_is_settled_by_the_next_read()
    {
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        var generation = ledger.BeginSettlement();
        ledger.PossiblyWritten(A, partition: 0, producedSoFar: 1, now: 0); // the read may have started before it was written
        Assert.Empty(ledger.EndSettlement(generation, answeringSince: 0, now: 100_000, grace: 1));
        Assert.Equal(1, ledger.UncertainCount);
        Assert.Equal(["a"], ledger.EndSettlement(ledger.BeginSettlement(), answeringSince: 0, now: 100_000, grace: 1));
    }

    [Fact]
    public void A_failed_read_hands_back_the_waiting_publishes_and_keeps_them_uncertain()
    {
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        ledger.PossiblyWritten(A, partition: 0, producedSoFar: 1, now: 0);
        ledger.BeginSettlement();
        Assert.Equal(["a"], ledger.SettlementFailed());
        Assert.Equal(1, ledger.UncertainCount);
        Assert.Equal(Admission.Waiting, ledger.Admit(A, Data1, "retry", inTime: true, out _));
    }

    [Fact]
    public void The_first_record_in_the_log_wins_a_reused_id_waiting_with_other_data_gets_conflict()
    {
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data2, "mine", inTime: true, out _);
        ledger.PossiblyWritten(A, partition: 0, producedSoFar: 1, now: 0);
        var observed = ledger.Observe(A, Data1, "pos-1"); // an older record with this (client, id)
        Assert.True(observed.Conflict);
        Assert.Equal(["mine"], observed.Waiting);
        Assert.Equal(Admission.Duplicate, ledger.Admit(A, Data1, "x", inTime: true, out _));
    }

    [Fact]
    public void The_window_forgets_the_oldest_written_and_never_what_is_in_flight_or_uncertain()
    {
        var ledger = new PublishLedger<string>(2);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        ledger.PossiblyWritten(A, partition: 0, producedSoFar: 1, now: 0);
        for (var i = 0; i < 5; i++) ledger.Observe(new PublishKey("t", "c", $"w{i}"), Data1, $"pos-{i}");
        Assert.Equal(2, ledger.WrittenCount);
        Assert.Equal(Admission.Produce, ledger.Admit(new PublishKey("t", "c", "w0"), Data1, "again", inTime: true, out _)); // forgotten
        Assert.Equal(Admission.Duplicate, ledger.Admit(new PublishKey("t", "c", "w4"), Data1, "again", inTime: true, out _));
        Assert.Equal(Admission.Waiting, ledger.Admit(A, Data1, "retry", inTime: true, out _)); // still uncertain
    }

    [Fact]
    public void Abandon_hands_back_everything_that_waits()
    {
        var ledger = new PublishLedger<string>(10);
        ledger.Admit(A, Data1, "a", inTime: true, out _);
        ledger.Admit(B, Data1, "b", inTime: true, out _);
        ledger.PossiblyWritten(B, partition: 0, producedSoFar: 2, now: 0);
        Assert.Equal(["a", "b"], ledger.Abandon().Order());
    }

    [Fact]
    public void Fingerprints_tell_data_and_key_apart_and_match_the_record_bytes()
    {
        var data = "{\"n\":1}"u8.ToArray();
        Assert.Equal(PublishFingerprint.Of(data, "k✓"), PublishFingerprint.Of(data, "k✓"u8.ToArray()));
        Assert.Equal(PublishFingerprint.Of(data, (string?)null), PublishFingerprint.Of(data, (byte[]?)null));
        Assert.NotEqual(PublishFingerprint.Of(data, (string?)null), PublishFingerprint.Of(data, ""));
        Assert.NotEqual(PublishFingerprint.Of(data, "a"), PublishFingerprint.Of(data, "b"));
        Assert.NotEqual(PublishFingerprint.Of(data, "a"), PublishFingerprint.Of("{\"n\":2}"u8, "a"));
        Assert.Equal(PublishFingerprint.Of(data, new string('x', 1000)), PublishFingerprint.Of(data, new string('x', 1000)));
    }
}
