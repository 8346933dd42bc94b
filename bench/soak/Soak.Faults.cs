using System.Net.WebSockets;
using Broker.Soak.Clients;
using Broker.Soak.Cluster;
using Broker.Soak.Faults;

namespace Broker.Soak;

public sealed partial class Soak
{
    /// <summary>
    /// Short mode: a fixed set in random order — kill -9, SIGTERM or drain, the log paused past
    /// produce-timeout, the database cut (PostgreSQL) — while clients abort mid-frame, a slow reader
    /// is closed and resumes, and a plain and a session subscriber restart. Long mode: every kind at
    /// random until the time is up.
    /// </summary>
    private async Task FaultPhaseAsync(Random random, CancellationToken ct)
    {
        var end = Clock.Now + o.Minutes * 60;
        using var clusterDone = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bool Over() => o.Long ? Clock.Now >= end : clusterDone.IsCancellationRequested;
        var kinds = new List<string> { FaultKinds.Kill9, FaultKinds.Term, FaultKinds.Drain, FaultKinds.LogPause };
        if (_cluster.Database.FaultKind is not null) kinds.Add(_cluster.Database.FaultKind == "db-stop" ? FaultKinds.DbStop : FaultKinds.DbCut);

        var clusterRandom = new Random(random.Next());
        var clientTasks = new List<Task>
        {
            SuperviseAsync(Over, ct),
            AbortsAsync(new Random(random.Next()), Over, ct),
            SlowReadersAsync(new Random(random.Next()), Over, ct),
            RestartsAsync(new Random(random.Next()), Over, ct),
        };
        if (o.Long)
        {
            // A quiet start (the publish outage without faults, for comparison), every kind once in
            // random order, then at random, until the time is up.
            await Task.Delay(TimeSpan.FromSeconds(15), ct);
            var plan = new Queue<string>(kinds.OrderBy(_ => clusterRandom.Next()));
            while (Clock.Now < end)
            {
                var kind = plan.Count > 0 ? plan.Dequeue() : kinds[clusterRandom.Next(kinds.Count)];
                await ClusterFaultAsync(kind, clusterRandom, ct);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(Math.Max(0, end - Clock.Now), clusterRandom.Next(10, 31))), ct);
            }
        }
        else
        {
            // Leave the client loops time to start their first episodes before the first node fault.
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            foreach (var kind in kinds.OrderBy(_ => clusterRandom.Next()))
            {
                await ClusterFaultAsync(kind, clusterRandom, ct);
                await Task.Delay(TimeSpan.FromSeconds(3), ct);
            }
        }
        clusterDone.Cancel();
        await Task.WhenAll(clientTasks);
    }

    /// <summary>
    /// After a fault of the cluster, waits (bounded) until every continuous publisher had an ack
    /// again, so that the next fault starts on a cluster that recovered and each outage belongs to one fault.
    /// </summary>
    private async Task WaitRecoveredAsync(FaultEvent e, CancellationToken ct)
    {
        var since = e.Healed ?? Clock.Now;
        var deadline = Clock.Now + 120;
        while (!(_publishers.All(p => p.Book.LastAckAt > since) && _probe.Book.LastAckAt > since))
        {
            if (Clock.Now > deadline)
            {
                _faults.Note(e, "publishers had not all acked again 120 s after it was over");
                return;
            }
            await Task.Delay(100, ct);
        }
        e.Recovered = Clock.Now;
        Clock.Log($"fault #{e.Number}: every publisher acked again {e.Recovered - e.Start:0.0}s after it began");
    }

    private double Pick(Random r, double shortValue, double longMin, double longMax) =>
        o.Long ? longMin + r.NextDouble() * (longMax - longMin) : shortValue;

    private async Task ClusterFaultAsync(string kind, Random r, CancellationToken ct)
    {
        if (await InjectAsync(kind, r, ct) is { } e) await WaitRecoveredAsync(e, ct);
    }

    /// <summary>Injects one fault and returns it (null: a node fault found no node to work on, every node being restarted).</summary>
    private async Task<FaultEvent?> InjectAsync(string kind, Random r, CancellationToken ct)
    {
        switch (kind)
        {
            case FaultKinds.Kill9 or FaultKinds.Term or FaultKinds.Drain:
            {
                if (await PickNodeAsync(r, ct) is not { } node)
                {
                    Clock.Log($"{kind}: skipped, no node to fault (every node is being restarted)");
                    return null;
                }
                var owned = await OwnedWritersAsync(node, ct);
                var e = _faults.Begin(kind, node.Name, $"pid {node.Pid}; topic writers on it: {(owned.Count == 0 ? "none" : string.Join(", ", owned))}");
                var down = Pick(r, 2, 1, 10);
                if (kind == FaultKinds.Kill9)
                {
                    await node.KillAsync();
                }
                else
                {
                    if (kind == FaultKinds.Drain)
                    {
                        await _cluster.DrainAsync(node, ct);
                        await Task.Delay(TimeSpan.FromSeconds(Pick(r, 4, 5, 15)), ct);
                        _faults.Note(e, "drained; SIGTERM");
                    }
                    var stopping = Clock.Now;
                    var clean = await node.TerminateAsync(TimeSpan.FromSeconds(30));
                    _faults.Note(e, clean ? $"exited {Clock.Now - stopping:0.0}s after SIGTERM" : "still running 30 s after SIGTERM: killed");
                }
                await Task.Delay(TimeSpan.FromSeconds(down), ct);
                try { await RestartAsync(node, e, ct); }
                finally { Release(node); }
                return e;
            }
            case FaultKinds.LogPause:
            {
                var hold = Pick(r, 12, 3, 20);
                var e = _faults.Begin(kind, "Kafka-protocol log", $"pid {_cluster.Log.Pid} frozen for {hold:0.0}s (produce-timeout is 10 s)");
                _cluster.Log.Freeze();
                try { await Task.Delay(TimeSpan.FromSeconds(hold), ct); }
                finally { _cluster.Log.Resume(); }
                _faults.Healed(e, "SIGCONT");
                return e;
            }
            case FaultKinds.DbStop or FaultKinds.DbCut:
            {
                await _dbGate.WaitAsync(ct);
                try
                {
                    var hold = Pick(r, 6, 5, 20);
                    var e = _faults.Begin(kind, "session store", $"{_cluster.Database.Description}, for {hold:0.0}s");
                    await _cluster.Database.BreakAsync(ct);
                    try { await Task.Delay(TimeSpan.FromSeconds(hold), ct); }
                    finally { await _cluster.Database.RepairAsync(CancellationToken.None); }
                    _faults.Healed(e, "back");
                    return e;
                }
                finally
                {
                    _dbGate.Release();
                }
            }
            default:
                throw new ArgumentException($"unknown fault {kind}", nameof(kind));
        }
    }

    /// <summary>Starts the node again and waits until it is ready (one more try after 120 s).</summary>
    private async Task RestartAsync(NodeProcess node, FaultEvent e, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            node.Start();
            try
            {
                await node.WaitReadyAsync(TimeSpan.FromSeconds(120), ct);
                _faults.Healed(e, $"restarted, pid {node.Pid}, ready");
                return;
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException && attempt < 2 && !ct.IsCancellationRequested)
            {
                _faults.Note(e, $"restart {attempt} failed: {ex.Message}");
                await node.TerminateAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException && !ct.IsCancellationRequested)
            {
                _faults.Healed(e, $"NOT READY: {ex.Message}");
                return;
            }
        }
    }

    /// <summary>Guards the node sets below: a node fault, a restart and a slow reader never work on the same node.</summary>
    private readonly Lock _nodes = new();
    /// <summary>Nodes under a node fault (from the pick until ready again) or being restarted after they exited by themselves.</summary>
    private readonly HashSet<NodeProcess> _busy = [];
    /// <summary>The node a slow reader waits on to be closed as a slow consumer.</summary>
    private NodeProcess? _slowReaderNode;

    /// <summary>
    /// The node that runs the writer of a topic chosen at random (the interesting node to lose), else
    /// any running node; never one a slow reader is waiting on or one being restarted. It stays busy
    /// until <see cref="Release"/>. Null when no node can be picked.
    /// </summary>
    private async Task<NodeProcess?> PickNodeAsync(Random r, CancellationToken ct)
    {
        var owner = await _cluster.WriterOwnerAsync(_all[r.Next(_all.Length)], ct);
        lock (_nodes)
        {
            var running = _cluster.Nodes.Where(n => n.IsRunning && n != _slowReaderNode && !_busy.Contains(n)).ToList();
            if (running.Count == 0) return null;
            var node = owner is not null && running.Contains(owner) ? owner : running[r.Next(running.Count)];
            _busy.Add(node);
            return node;
        }
    }

    private void Release(NodeProcess node)
    {
        lock (_nodes) _busy.Remove(node);
    }

    /// <summary>Running nodes that no node fault or restart is working on (for clients that must not lose theirs right away).</summary>
    private List<NodeProcess> HealthyNodes()
    {
        lock (_nodes) return [.. _cluster.Nodes.Where(n => n.IsRunning && !_busy.Contains(n))];
    }

    /// <summary>A healthy node (else any node: the client's attempt then fails and is counted as such).</summary>
    private NodeProcess RandomHealthyNode(Random r)
    {
        var healthy = HealthyNodes();
        return healthy.Count > 0 ? healthy[r.Next(healthy.Count)] : _cluster.Nodes[r.Next(_cluster.Nodes.Count)];
    }

    /// <summary>
    /// What an orchestrator (systemd, Kubernetes, <c>scripts/cluster.sh</c>) does: a node whose process
    /// exited by itself — the split-brain resolver downed it and it left, or it crashed — is started
    /// again. Each such exit is a fault of its own in the report ("node exited by itself"), with its
    /// exit code and the node's last lines about why.
    /// </summary>
    private async Task SuperviseAsync(Func<bool> over, CancellationToken ct)
    {
        var restarts = new List<Task>();
        while (!over())
        {
            foreach (var node in _cluster.Nodes)
            {
                lock (_nodes)
                {
                    if (_busy.Contains(node) || node.IsRunning) continue;
                    _busy.Add(node);
                }
                restarts.Add(RestartExitedAsync(node, ct));
            }
            try { await Task.Delay(500, ct); }
            catch (OperationCanceledException) { break; }
        }
        await Task.WhenAll(restarts);
    }

    private async Task RestartExitedAsync(NodeProcess node, CancellationToken ct)
    {
        try
        {
            var e = _faults.Begin(FaultKinds.Exited, node.Name, $"exit code {node.ExitCode?.ToString() ?? "?"}; {node.WhyExited()}");
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            await RestartAsync(node, e, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the run ends
        }
        finally
        {
            Release(node);
        }
    }

    private async Task<List<string>> OwnedWritersAsync(NodeProcess node, CancellationToken ct)
    {
        var owners = await Task.WhenAll(_all.Select(async t => (Topic: t, Owner: await _cluster.WriterOwnerAsync(t, ct))));
        return [.. owners.Where(o => o.Owner == node).Select(o => o.Topic)];
    }

    private static async Task<bool> PauseAsync(TimeSpan delay, Func<bool> over, CancellationToken ct)
    {
        var until = Clock.Now + delay.TotalSeconds;
        while (Clock.Now < until)
        {
            if (over()) return false;
            await Task.Delay(TimeSpan.FromSeconds(Math.Min(0.5, Math.Max(0.01, until - Clock.Now))), ct);
        }
        return !over();
    }

    private async Task AbortsAsync(Random r, Func<bool> over, CancellationToken ct)
    {
        while (await PauseAsync(TimeSpan.FromSeconds(o.Long ? r.Next(5, 16) : r.Next(3, 7)), over, ct))
        {
            var node = RandomHealthyNode(r);
            var e = _faults.Begin(FaultKinds.Abort, node.Name);
            try
            {
                var detail = await _aborter.EpisodeAsync(r, node.WsUri, _cluster.Endpoints(r.Next(3)), _single[^1], ct);
                _faults.Healed(e, detail);
            }
            catch (Exception ex) when (ex is WebSocketException or IOException or System.Net.Sockets.SocketException or TimeoutException && !ct.IsCancellationRequested)
            {
                _faults.Healed(e, $"could not run: {ex.Message}");
            }
        }
    }

    private async Task SlowReadersAsync(Random r, Func<bool> over, CancellationToken ct)
    {
        var n = 0;
        while (await PauseAsync(TimeSpan.FromSeconds(o.Long ? r.Next(120, 301) : n == 0 ? 1 : 1e6), over, ct))
        {
            await SlowReaderEpisodeAsync(++n, r, ct);
            if (!o.Long) return;
        }
    }

    /// <summary>
    /// A slow reader subscribes burst topics of its own and a shared topic, stops reading while
    /// publishers burst about 10 MB into the burst topics, and waits for the broker to close it as a
    /// slow consumer (its node's slow-consumer counter moves); then it drains what reached it,
    /// resumes with since on the next node and must receive every message of the burst once.
    /// </summary>
    private async Task SlowReaderEpisodeAsync(int n, Random r, CancellationToken ct)
    {
        var fireTopics = Enumerable.Range(0, o.FireTopics).Select(i => $"{TopicPrefix}fire.{n}.{i}").ToList();
        var shared = _single[r.Next(_single.Length)];
        var reader = new SlowReader($"slow{n}", $"{_run}-slow{n}", [.. fireTopics, shared]);
        NodeProcess node;
        lock (_nodes)
        {
            var healthy = _cluster.Nodes.Where(n => n.IsRunning && !_busy.Contains(n)).ToList();
            if (healthy.Count == 0)
            {
                Clock.Log($"{reader.Name}: skipped, no healthy node");
                return;
            }
            node = healthy[r.Next(healthy.Count)];
            _slowReaderNode = node;
        }
        lock (_slowReaders) _slowReaders.Add(reader);
        try
        {
            await SlowReaderOnAsync(node, reader, fireTopics, shared, n, r, ct);
        }
        finally
        {
            lock (_nodes) _slowReaderNode = null;
        }
    }

    private async Task SlowReaderOnAsync(NodeProcess node, SlowReader reader, List<string> fireTopics, string shared, int n, Random r, CancellationToken ct)
    {
        var e = _faults.Begin(FaultKinds.SlowReader, node.Name,
            $"{reader.Name} on {TopicPrefix}fire.{n}.0-{o.FireTopics - 1} (bursts of {o.FireMessages} × {o.FirePadding} B) and {shared}");
        WebSocket ws;
        try
        {
            ws = await reader.ConnectAsync(node.WsUri, ct);
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or System.Net.Sockets.SocketException or InvalidOperationException && !ct.IsCancellationRequested)
        {
            _faults.Healed(e, $"could not subscribe: {ex.Message}");
            return;
        }
        var before = await SoakCluster.MetricAsync(node, "broker_slow_consumer_closes_total", ct) ?? 0;
        var fire = fireTopics.Select((t, i) => new Publisher($"fire{n}.{i}", $"{_run}-fire{n}.{i}", t, null, _cluster.Endpoints(r.Next(3)), 128, o.FirePadding)).ToList();
        lock (_firePublishers) _firePublishers.AddRange(fire);
        await Task.WhenAll(fire.Select(f => f.ConnectAsync(ct)));
        var stopped = Clock.Now;
        var burst = Task.WhenAll(fire.Select(f => f.RunAsync(TimeSpan.Zero, o.FireMessages, ct)));
        double? closedAfter = null;
        while (Clock.Now - stopped < 40)
        {
            await Task.Delay(500, ct);
            if (await SoakCluster.MetricAsync(node, "broker_slow_consumer_closes_total", ct) > before)
            {
                closedAfter = Clock.Now - stopped;
                break;
            }
        }
        reader.ClosedAsSlowConsumer = closedAfter is not null;
        _faults.Note(e, closedAfter is { } after ? $"closed as a slow consumer {after:0.0}s after it stopped reading" : "NOT closed within 40 s of not reading");
        var code = await reader.DrainAsync(ws, ct);
        lock (_nodes) _slowReaderNode = null; // it reads again: its node may fail now
        await burst;
        var flushed = (await Task.WhenAll(fire.Select(f => f.FlushAsync(TimeSpan.FromSeconds(60))))).All(f => f);
        bool Done() => fire.All(f => reader.Distinct(f.Topic) >= f.Book.Acked);
        var deadline = Clock.Now + 90;
        for (var k = node.Index + 1; !Done() && Clock.Now < deadline; k++)
        {
            try
            {
                var next = _cluster.Nodes[k % _cluster.Nodes.Count];
                await reader.ReadUntilAsync(await reader.ConnectAsync(next.WsUri, ct), Done, ct);
            }
            catch (Exception ex) when (ex is WebSocketException or IOException or System.Net.Sockets.SocketException or InvalidOperationException && !ct.IsCancellationRequested)
            {
                await Task.Delay(300, ct);
            }
        }
        foreach (var s in reader.Streams.Where(s => fireTopics.Contains(s.Topic))) s.Complete = true;
        _faults.Healed(e, $"its connection ended with {code}; after resuming with since it had {fire.Sum(f => reader.Distinct(f.Topic))} of the {fire.Sum(f => f.Book.Acked)} burst messages acked" +
                          (flushed ? "" : " (the burst publishers still waited for acks)"));
    }

    private async Task RestartsAsync(Random r, Func<bool> over, CancellationToken ct)
    {
        var n = 0;
        while (await PauseAsync(TimeSpan.FromSeconds(o.Long ? r.Next(30, 91) : n == 0 ? 10 : n == 1 ? 12 : 1e6), over, ct))
        {
            var session = n++ % 2 == 1;
            var candidates = _subscribers.Where(s => (s.Session is not null) == session).ToList();
            var sub = candidates[r.Next(candidates.Count)];
            if (session) await _dbGate.WaitAsync(ct);
            try
            {
                var e = _faults.Begin(FaultKinds.Restart, sub.Name);
                try
                {
                    _faults.Healed(e, await sub.RestartAsync(ct));
                }
                catch (Exception ex) when (ex is Broker.Client.BrokerException or TimeoutException or OperationCanceledException && !ct.IsCancellationRequested)
                {
                    _faults.Healed(e, $"FAILED: {ex.Message}");
                }
            }
            finally
            {
                if (session) _dbGate.Release();
            }
            if (!o.Long && n == 2) return;
        }
    }
}
