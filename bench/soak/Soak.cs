using Broker.Soak.Check;
using Broker.Soak.Clients;
using Broker.Soak.Cluster;
using Broker.Soak.Faults;

namespace Broker.Soak;

/// <summary>Resident memory of one node over the run.</summary>
public sealed class NodeMemory(string name)
{
    public string Name { get; } = name;
    public double? Start { get; set; }
    public double? End { get; set; }
    public double Max { get; set; }
    public int Restarts { get; set; }
}

/// <summary>
/// One soak run: the cluster, the clients, the faults (two loops: the cluster's faults one at a time,
/// the clients' faults beside them), then the end — publishing stops, every answer is awaited, the
/// subscribers catch up — and the check of everything against the log read back from its start.
/// </summary>
public sealed partial class Soak(SoakOptions o)
{
    private const string TopicPrefix = "soak.";
    private readonly string _run = Convert.ToHexString(BitConverter.GetBytes(Random.Shared.NextInt64()))[..8].ToLowerInvariant();
    private readonly FaultLog _faults = new();
    private readonly List<Publisher> _publishers = [];
    private readonly List<Publisher> _firePublishers = [];
    private readonly List<Subscriber> _subscribers = [];
    private readonly List<SlowReader> _slowReaders = [];
    private readonly Dictionary<string, NodeMemory> _memory = [];
    /// <summary>Held by a database fault and by a session's restart: a session restarted while its store is down cannot be restored.</summary>
    private readonly SemaphoreSlim _dbGate = new(1, 1);
    private SoakCluster _cluster = null!;
    private ProbePublisher _probe = null!;
    private Aborter _aborter = null!;
    private string[] _single = [];
    private string _mp = "";
    private string[] _all = [];

    public SoakResult Result { get; } = new();

    public async Task<SoakResult> RunAsync(CancellationToken ct)
    {
        var work = o.Work ?? Path.Combine(Path.GetTempPath(), $"broker-soak-{_run}");
        Directory.CreateDirectory(work);
        Result.Run = _run;
        Result.Options = o;
        Result.WorkDir = work;
        var random = new Random(o.Seed);
        Clock.Log($"soak {_run}: {o.Mode} mode, seed {o.Seed}, logs in {work}");

        var database = o.Db == "sqlite" ? Database.Sqlite(Path.Combine(work, "sessions.db")) : Database.Postgres(o.Pg!, o.DbFault, o.PgCtl);
        Result.Database = database.Description;
        try
        {
            _cluster = await SoakCluster.StartAsync(o.Bin, work, database, ct);
        }
        catch
        {
            await database.DisposeAsync();
            throw;
        }
        try
        {
            Result.StartupSeconds = Clock.Now;
            Clock.Log($"cluster ready: {string.Join(", ", _cluster.Nodes.Select(n => $"{n.Name} pid {n.Pid} ws :{n.HttpPort}"))}; log pid {_cluster.Log.Pid}");
            await StartClientsAsync(ct);
            foreach (var n in _cluster.Nodes) _memory[n.Name] = new NodeMemory(n.Name) { Start = n.RssMiB() };
            _memory["log"] = new NodeMemory("Kafka-protocol log") { Start = _cluster.Log.RssMiB() };
            using var sampling = new CancellationTokenSource();
            var sampler = SampleMemoryAsync(sampling.Token);

            var phaseStart = Clock.Now;
            Result.PhaseStart = phaseStart;
            await FaultPhaseAsync(random, ct);
            var phaseEnd = Clock.Now;
            Result.PhaseEnd = phaseEnd;
            Clock.Log($"faults over after {phaseEnd - phaseStart:0}s; quiet, then publishing stops");
            await Task.Delay(TimeSpan.FromSeconds(4), ct);

            await StopPublishingAsync(ct);
            var log = await CatchUpAsync(ct);
            foreach (var n in _cluster.Nodes)
            {
                _memory[n.Name].End = n.RssMiB();
                _memory[n.Name].Restarts = n.Starts - 1;
            }
            _memory["log"].End = _cluster.Log.RssMiB();
            sampling.Cancel();
            await sampler;
            foreach (var s in _subscribers) await s.DisposeAsync();

            Check(log, phaseStart, phaseEnd);
        }
        finally
        {
            // Also when the run failed or was interrupted: the report shows what happened until then.
            if (Result.PhaseStart > 0 && Result.PhaseEnd == 0) Result.PhaseEnd = Clock.Now;
            Result.Memory = [.. _memory.Values];
            Result.Faults = _faults.Events;
            Clock.Log("stopping the cluster");
            foreach (var s in _subscribers) await s.DisposeAsync();
            foreach (var p in _publishers.Concat(_firePublishers)) await p.DisposeAsync();
            await _cluster.DisposeAsync();
            Result.TotalSeconds = Clock.Now;
        }
        return Result;
    }

    private async Task StartClientsAsync(CancellationToken ct)
    {
        // soak.t0… have a publisher each; soak.probe is the probe publisher's own (and the aborted clients').
        _single = [.. Enumerable.Range(0, o.Topics).Select(i => $"{TopicPrefix}t{i}"), TopicPrefix + "probe"];
        _mp = TopicPrefix + "mp.k";
        _all = [.. _single, _mp];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(120));
        for (var i = 0; i < _cluster.Nodes.Count; i++)
        {
            _subscribers.Add(new Subscriber($"plain{i + 1}", $"{_run}-plain{i + 1}", null, _all, _cluster.Endpoints(i)));
            // Sessions read the single-partition topics: the client library's de-duplication of a restored
            // session is exact there (with several partitions it may deliver a message again, as documented).
            _subscribers.Add(new Subscriber($"session{i + 1}", $"{_run}-session{i + 1}", $"{_run}-s{i + 1}", _single, _cluster.Endpoints(i)));
        }
        await Task.WhenAll(_subscribers.Select(s => s.StartAsync(timeout.Token)));
        var j = 0;
        foreach (var topic in _single[..^1]) _publishers.Add(new Publisher($"pub{j}", $"{_run}-pub{j}", topic, null, _cluster.Endpoints(j++ % 3), o.Window, o.Padding));
        foreach (var key in new[] { "a", "b" }) _publishers.Add(new Publisher($"pub{j}", $"{_run}-pub{j}", _mp, key, _cluster.Endpoints(j++ % 3), o.Window, o.Padding));
        await Task.WhenAll(_publishers.Select(p => p.ConnectAsync(timeout.Token)));
        _probe = new ProbePublisher("probe", $"{_run}-probe", _single[^1], _cluster.Endpoints(1), 8, o.Padding);
        _aborter = new Aborter("abort", $"{_run}-abort", o.Padding);
        _publishing = new CancellationTokenSource();
        var pace = TimeSpan.FromSeconds(1 / o.Rate);
        _publishingTasks = [.. _publishers.Select(p => p.RunAsync(pace, long.MaxValue, _publishing.Token))];
        _probeTask = _probe.RunAsync(pace, _publishing.Token, _abandon.Token);
        while (_publishers.Any(p => p.Book.Acked == 0) || _probe.Book.Acked == 0)
        {
            timeout.Token.ThrowIfCancellationRequested();
            await Task.Delay(200, timeout.Token);
        }
        Clock.Log($"{_subscribers.Count} subscribers and {_publishers.Count + 1} publishers running on {_all.Length} topics");
    }

    private CancellationTokenSource _publishing = new();
    private readonly CancellationTokenSource _abandon = new();
    private Task[] _publishingTasks = [];
    private Task _probeTask = Task.CompletedTask;

    private async Task StopPublishingAsync(CancellationToken ct)
    {
        _publishing.Cancel();
        await Task.WhenAll(_publishingTasks);
        var flushed = await Task.WhenAll(_publishers.Concat(_firePublishers).Select(p => p.FlushAsync(TimeSpan.FromSeconds(60))));
        _abandon.CancelAfter(TimeSpan.FromSeconds(60));
        await _probeTask;
        await _aborter.FlushAsync(TimeSpan.FromSeconds(60));
        Clock.Log($"publishing stopped: {_publishers.Sum(p => p.Book.Acked) + _probe.Book.Acked} acks" +
                  (flushed.All(f => f) ? "" : $"; {flushed.Count(f => !f)} publisher(s) still had unanswered publishes after 60 s"));
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>Reads the log, waits (bounded) until every subscriber has its last records, and reads it again if it changed meanwhile.</summary>
    private async Task<LogSnapshot> CatchUpAsync(CancellationToken ct)
    {
        var log = await Task.Run(() => LogReader.Read(_cluster.Log.Bootstrap, TopicPrefix, TimeSpan.FromSeconds(120)), ct);
        var last = log.LastRecords();
        var deadline = Clock.Now + 60;
        while (!_subscribers.All(s => s.CaughtUp(last)) && Clock.Now < deadline) await Task.Delay(250, ct);
        var lagging = _subscribers.Where(s => !s.CaughtUp(last)).Select(s => s.Name).ToList();
        Clock.Log(lagging.Count == 0 ? $"every subscriber has the log's last records ({log.Count} records)" : $"not caught up after 60 s: {string.Join(", ", lagging)}");
        var again = await Task.Run(() => LogReader.Read(_cluster.Log.Bootstrap, TopicPrefix, TimeSpan.FromSeconds(120)), ct);
        if (again.Signature != log.Signature) Clock.Log("the log changed while the subscribers caught up: checking against the later read");
        return again;
    }

    private async Task SampleMemoryAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            foreach (var n in _cluster.Nodes)
            {
                if (n.RssMiB() is { } rss && rss > _memory[n.Name].Max) _memory[n.Name].Max = rss;
            }
            if (_cluster.Log.RssMiB() is { } l && l > _memory["log"].Max) _memory["log"].Max = l;
            try { await Task.Delay(2000, ct); }
            catch (OperationCanceledException) { return; }
        }
    }

    private void Check(LogSnapshot log, double phaseStart, double phaseEnd)
    {
        var checker = new Checker();
        var publishes = _publishers.Concat(_firePublishers).SelectMany(p => p.Book.Records).Concat(_probe.Book.Records).Concat(_aborter.Records);
        var answers = _probe.Answers;
        // A claim is about the attempt it answered: an id the probe sent twice (no answer within 30 s)
        // may be refused for one copy and acknowledged for the other, and then it is in the log.
        var acked = answers.Where(a => a.IsAck).Select(a => a.Id).ToHashSet(StringComparer.Ordinal);
        var notStored = answers.Where(a => !a.IsAck && !a.IsUncertain && !acked.Contains(a.Id)).Select(a => new Claim(_probe.Topic, _probe.ClientId, a.Id, $"{a.Code}: {a.Message}"));
        var uncertain = answers.Where(a => a.IsUncertain).Select(a => new Claim(_probe.Topic, _probe.ClientId, a.Id, $"{a.Code}: {a.Message}"));
        var cut = _aborter.NeverCompleted.Select(c => new Claim(c.Topic, _aborter.ClientId, c.Id, "cut off"));
        var streams = _subscribers.SelectMany(s => s.Streams).Concat(_slowReaders.SelectMany(r => r.Streams));
        checker.Run(log, publishes, notStored, uncertain, cut, streams);
        foreach (var r in _slowReaders.Where(r => r.ClosedAsSlowConsumer == false)) checker.SlowNotClosed.Add($"{r.Name} ({string.Join(", ", r.Topics)})");
        Result.Checker = checker;
        Result.LogRecords = log.Count;
        Result.Outages = Outages.Compute(_faults.Events,
            [.. _publishers.Select(p => (p.Name, p.Book.AckTimes)), (_probe.Name, _probe.Book.AckTimes)], phaseStart, phaseEnd);
        Result.Clients = [.. _subscribers.Select(s => new ClientSummary(s.Name, s.Session is null ? "plain subscriber" : "session subscriber", s.Stats.ByCode, s.Restarts)),
            .. _publishers.Select(p => new ClientSummary(p.Name, $"publisher ({p.Topic}{(p.Key is null ? "" : ", key " + p.Key)})", p.Stats.ByCode, 0)),
            new ClientSummary(_probe.Name, $"probe publisher ({_probe.Topic})", _probe.Stats.ByCode, 0),
            .. _slowReaders.Select(r => new ClientSummary(r.Name, "slow reader", r.Stats.ByCode, 0))];
    }
}
