namespace Broker.Core.Publish;

/// <summary>A client publish's identity for de-duplication: the broker topic, the client identity and the request id.</summary>
public readonly record struct PublishKey(string Topic, string Client, string Id);

/// <summary>What a writer does with a publish, as decided by <see cref="PublishLedger{TPending}.Admit"/>.</summary>
public enum Admission
{
    /// <summary>Write it now; the ledger holds it as in flight until the writer reports what Kafka said.</summary>
    Produce,
    /// <summary>A retry of a publish that is in the log: answer the ack at the remembered position.</summary>
    Duplicate,
    /// <summary>The (client, id) is remembered with other data or key: refuse with <c>conflict</c>.</summary>
    Conflict,
    /// <summary>A retry of a publish being written or being settled: the ledger keeps it and returns it with the outcome.</summary>
    Waiting,
    /// <summary>Too late to be answered before the client's deadline: refuse with <c>unavailable</c>; nothing is written.</summary>
    TooLate,
}

/// <summary>What a record read back from the log settled, see <see cref="PublishLedger{TPending}.Observe"/>.</summary>
/// <param name="Waiting">Publishes that waited for the record's (client, id): answer them.</param>
/// <param name="Conflict">True when the record's data or key differ from theirs: they get <c>conflict</c>, else the ack.</param>
public readonly record struct Observed<TPending>(List<TPending>? Waiting, bool Conflict);

/// <summary>
/// The bookkeeping of one writer (a topic's <see cref="TopicActor"/>, or any single writer of
/// several broker topics into one Kafka partition): which client publishes are in the log, which
/// are being written, and which have an outcome nobody knows yet. It decides what to do with each
/// publish so that a (client, id) is written at most once and every answer is true:
/// <list type="bullet">
/// <item><b>Written</b> (acknowledged, or read back from the log): a retry gets the same position;
/// the last <c>capacity</c> are remembered, the oldest forgotten first.</item>
/// <item><b>In flight</b> (handed to the producer): a retry waits for the same outcome.</item>
/// <item><b>Uncertain</b> (Kafka did not answer in time after the record was sent, so it may or may not
/// be in the log): a retry waits until the writer has read the log back
/// (<see cref="BeginSettlement"/> to <see cref="EndSettlement"/>); then it gets the ack of the record
/// found, or — not found — it is written.</item>
/// </list>
/// "Not found" is only concluded when the record can no longer arrive: a request that was sent
/// before the answer timed out may still sit in a buffer on its way to Kafka. So an uncertain
/// publish is settled as not written only once its partition has acknowledged a record produced
/// after the timeout (Kafka processes a partition's requests in order, and the idempotent
/// producer's epoch, bumped after a timeout, fences older requests), or once the log has been
/// answering for a grace period (the writer uses produce-timeout) without the record showing up.
/// A (client, id) seen with other data or key than remembered is a <see cref="Admission.Conflict"/>,
/// never acknowledged. Each remembered publish is compared by a fingerprint of its data and key
/// (<see cref="PublishFingerprint"/>), which the writer also computes for records read from the log.
/// Not thread-safe: one owner (an actor) uses it. <typeparamref name="TPending"/> is whatever the
/// owner needs to answer a waiting publish (its request and reply address).
/// </summary>
public sealed class PublishLedger<TPending>
{
    private enum State
    {
        InFlight,
        Uncertain,
        Written,
    }

    private sealed class Entry(ulong fingerprint, State state)
    {
        public ulong Fingerprint = fingerprint;
        public State State = state;
        public string? Pos;
        public List<TPending>? Waiting;
        /// <summary>For uncertain entries: the settlement generation in which it became uncertain.</summary>
        public long Since;
        /// <summary>For uncertain entries: the partition the record was sent to (-1: unknown).</summary>
        public int Partition = -1;
        /// <summary>For uncertain entries: records produced after this number fence it once acknowledged in its partition.</summary>
        public long FenceAfter;
        /// <summary>For uncertain entries: when it became uncertain (the owner's clock, milliseconds).</summary>
        public long UncertainAt;
    }

    private readonly int _capacity;
    private readonly Dictionary<PublishKey, Entry> _entries = new();
    private readonly Queue<PublishKey> _written = new();
    private long _generation;
    private int _uncertain;
    /// <summary>Per partition, the highest number of a produced record that Kafka acknowledged.</summary>
    private long[] _acked = [];
    /// <summary><see cref="_acked"/> when the current settlement began: only fences its read can have covered count for it.</summary>
    private long[] _ackedAtBegin = [];

    /// <param name="capacity">Written publishes remembered (the de-duplication window); 0 remembers none.</param>
    public PublishLedger(int capacity) => _capacity = Math.Max(0, capacity);

    /// <summary>Written publishes remembered.</summary>
    public int WrittenCount => _written.Count;

    /// <summary>Publishes handed to the producer whose outcome is not known yet.</summary>
    public int InFlightCount => _entries.Count - _written.Count - _uncertain;

    /// <summary>Publishes whose outcome must be settled by reading the log back.</summary>
    public int UncertainCount => _uncertain;

    /// <summary>Whether some uncertain publish has a retry waiting for its outcome.</summary>
    public bool RetryWaitsForSettlement { get; private set; }

    /// <summary>
    /// Decides what to do with a publish. <paramref name="key"/> null: a publish without identity
    /// (written unless too late). <paramref name="inTime"/>: whether Kafka's answer can still reach
    /// the client before its deadline. A <see cref="Admission.Produce"/> or
    /// <see cref="Admission.Waiting"/> publish is kept (as <paramref name="pending"/>) and returned
    /// with its outcome.
    /// </summary>
    public Admission Admit(PublishKey? key, ulong fingerprint, TPending pending, bool inTime, out string? pos)
    {
        pos = null;
        if (key is not { } k) return inTime ? Admission.Produce : Admission.TooLate;
        if (_entries.TryGetValue(k, out var entry))
        {
            if (entry.Fingerprint != fingerprint) return Admission.Conflict;
            if (entry.State == State.Written)
            {
                pos = entry.Pos;
                return Admission.Duplicate;
            }
            (entry.Waiting ??= []).Add(pending);
            if (entry.State == State.Uncertain) RetryWaitsForSettlement = true;
            return Admission.Waiting;
        }
        if (!inTime) return Admission.TooLate;
        _entries[k] = new Entry(fingerprint, State.InFlight) { Waiting = [pending] };
        return Admission.Produce;
    }

    /// <summary>Kafka acknowledged the publish of <paramref name="key"/> at <paramref name="pos"/>: returns the publishes to acknowledge (the first one is the original).</summary>
    public List<TPending> Written(PublishKey key, string pos)
    {
        if (!_entries.TryGetValue(key, out var entry) || entry.State == State.Written) return [];
        if (entry.State == State.Uncertain) _uncertain--;
        var waiting = entry.Waiting ?? [];
        entry.Waiting = null;
        MakeWritten(key, entry, pos);
        return waiting;
    }

    /// <summary>Kafka refused the publish of <paramref name="key"/> and did not write it: it is forgotten; returns the publishes to refuse.</summary>
    public List<TPending> NotWritten(PublishKey key)
    {
        if (!_entries.TryGetValue(key, out var entry) || entry.State != State.InFlight) return [];
        _entries.Remove(key);
        return entry.Waiting ?? [];
    }

    /// <summary>
    /// Kafka did not answer in time after the record of <paramref name="key"/> was sent to
    /// <paramref name="partition"/>: it may be in the log or not. The publish and its retries wait
    /// for a settlement. <paramref name="producedSoFar"/>: the number of the last record the writer
    /// produced (see <see cref="Acknowledged"/>); a later one acknowledged in the same partition
    /// proves this one can no longer arrive. <paramref name="now"/>: the owner's clock (milliseconds).
    /// </summary>
    public void PossiblyWritten(PublishKey key, int partition, long producedSoFar, long now)
    {
        if (!_entries.TryGetValue(key, out var entry) || entry.State != State.InFlight) return;
        entry.State = State.Uncertain;
        entry.Since = _generation;
        entry.Partition = partition;
        entry.FenceAfter = producedSoFar;
        entry.UncertainAt = now;
        _uncertain++;
        if (entry.Waiting is { Count: > 0 }) RetryWaitsForSettlement = true;
    }

    /// <summary>Kafka acknowledged the writer's record number <paramref name="produced"/> (the writer numbers the records it produces) in <paramref name="partition"/>.</summary>
    public void Acknowledged(int partition, long produced)
    {
        if (partition < 0) return;
        if (partition >= _acked.Length) Array.Resize(ref _acked, partition + 1);
        if (produced > _acked[partition]) _acked[partition] = produced;
    }

    /// <summary>
    /// A record produced after this one's timeout had been acknowledged in its partition when the
    /// settlement began. An acknowledgement that arrives while the settlement reads does not count:
    /// the read's end was fixed before it, so the fencing record — and this one, written before it
    /// if at all — may lie beyond what the read covered.
    /// </summary>
    private bool FencedAtBegin(Entry entry) =>
        entry.Partition >= 0 && entry.Partition < _ackedAtBegin.Length && _ackedAtBegin[entry.Partition] > entry.FenceAfter;

    /// <summary>
    /// Starts a settlement: the owner then reads the log from before every uncertain record could have
    /// been written up to its current end, calls <see cref="Observe"/> for every client record read,
    /// and ends with <see cref="EndSettlement"/> (or <see cref="SettlementFailed"/>) with the
    /// returned generation. Publishes that become uncertain meanwhile are settled by the next one.
    /// </summary>
    public long BeginSettlement()
    {
        RetryWaitsForSettlement = false;
        _ackedAtBegin = (long[])_acked.Clone();
        return ++_generation;
    }

    /// <summary>
    /// A client record read from the log (at start-up, or during a settlement). An uncertain publish
    /// with this key is settled as written; any other (client, id) is remembered as written.
    /// </summary>
    public Observed<TPending> Observe(PublishKey key, ulong fingerprint, string pos)
    {
        if (_entries.TryGetValue(key, out var entry))
        {
            // In flight: its own delivery report is still to come and will say where it is.
            if (entry.State != State.Uncertain) return default;
            _uncertain--;
            var waiting = entry.Waiting;
            entry.Waiting = null;
            // The log holds the first record with this (client, id): that one is the publish.
            var conflict = entry.Fingerprint != fingerprint;
            entry.Fingerprint = fingerprint;
            MakeWritten(key, entry, pos);
            return new Observed<TPending>(waiting, conflict);
        }
        if (_capacity > 0) MakeWritten(key, new Entry(fingerprint, State.Written), pos);
        return default;
    }

    /// <summary>
    /// The log was read to its end: a publish uncertain since before <paramref name="generation"/>
    /// began that was not found is not in the log, and will not be, if it was fenced when the
    /// settlement began or if, by then, the log had been answering for <paramref name="grace"/> since
    /// it became uncertain (since <paramref name="answeringSince"/>, the first successful read after
    /// the log last failed to answer, if that is later): long enough for anything still on its way to
    /// have arrived. Both are judged as of <paramref name="now"/> = the time the settlement began,
    /// because its read covers the log only up to the end it found then. Those are forgotten;
    /// returns the publishes that waited for them, to be admitted again (and written). The others
    /// stay uncertain for the next settlement. Times: the owner's clock (ms).
    /// </summary>
    public List<TPending> EndSettlement(long generation, long answeringSince, long now, long grace)
    {
        var again = new List<TPending>();
        List<PublishKey>? settled = null;
        foreach (var (key, entry) in _entries)
        {
            if (entry.State != State.Uncertain || entry.Since >= generation) continue;
            if (!FencedAtBegin(entry) && now - Math.Max(entry.UncertainAt, answeringSince) < grace) continue;
            (settled ??= []).Add(key);
            if (entry.Waiting is not null) again.AddRange(entry.Waiting);
        }
        if (settled is not null)
        {
            foreach (var key in settled) _entries.Remove(key);
            _uncertain -= settled.Count;
        }
        RetryWaitsForSettlement = false;
        foreach (var entry in _entries.Values)
            if (entry.State == State.Uncertain && entry.Waiting is { Count: > 0 }) RetryWaitsForSettlement = true;
        return again;
    }

    /// <summary>
    /// The log could not be read: the uncertain publishes stay uncertain (settled later); returns the
    /// publishes that waited for them, to be answered that the outcome is not known yet.
    /// </summary>
    public List<TPending> SettlementFailed()
    {
        var waiting = new List<TPending>();
        foreach (var entry in _entries.Values)
        {
            if (entry.State != State.Uncertain || entry.Waiting is null) continue;
            waiting.AddRange(entry.Waiting);
            entry.Waiting = null;
        }
        RetryWaitsForSettlement = false;
        return waiting;
    }

    /// <summary>
    /// The writer stops: returns every publish still waiting (in flight or uncertain), to be answered
    /// that their outcome is not known here. The next writer of the topic reads the log back.
    /// </summary>
    public List<TPending> Abandon()
    {
        var waiting = new List<TPending>();
        foreach (var entry in _entries.Values)
        {
            if (entry.Waiting is null) continue;
            waiting.AddRange(entry.Waiting);
            entry.Waiting = null;
        }
        RetryWaitsForSettlement = false;
        return waiting;
    }

    private void MakeWritten(PublishKey key, Entry entry, string pos)
    {
        entry.State = State.Written;
        entry.Pos = pos;
        if (_capacity == 0)
        {
            _entries.Remove(key);
            return;
        }
        _entries[key] = entry;
        _written.Enqueue(key);
        while (_written.Count > _capacity) _entries.Remove(_written.Dequeue());
    }
}
