using System.Diagnostics;
using System.Text;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.Soak.Cluster;

/// <summary>
/// One broker node as a child process (<c>dotnet Broker.Server.dll</c>), on fixed loopback ports
/// that it keeps across restarts. Each start is a new process (a new PID, a new Akka incarnation at
/// the same address); every incarnation's output is appended to the node's log file.
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(3) };

    private readonly string _serverDll;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly StreamWriter _log;
    private readonly Lock _logGate = new();
    /// <summary>The last lines the node printed (for why it exited).</summary>
    private readonly Queue<string> _tail = new();
    private Process? _process;

    public NodeProcess(int index, int httpPort, int adminPort, int clusterPort, string serverDll, string logPath,
        IReadOnlyDictionary<string, string> environment)
    {
        Index = index;
        HttpPort = httpPort;
        AdminPort = adminPort;
        ClusterPort = clusterPort;
        _serverDll = serverDll;
        _environment = environment;
        LogPath = logPath;
        _log = new StreamWriter(logPath, append: true, new UTF8Encoding(false)) { AutoFlush = true };
    }

    public int Index { get; }
    public string Name => $"node{Index + 1}";
    public int HttpPort { get; }
    public int AdminPort { get; }
    public int ClusterPort { get; }
    public string LogPath { get; }
    public Uri WsUri => new($"ws://127.0.0.1:{HttpPort}/ws");
    public string AdminAddress => $"http://127.0.0.1:{AdminPort}";
    public string ClusterAddress => $"akka.tcp://broker@127.0.0.1:{ClusterPort}";

    /// <summary>Processes started for this node so far (1 after the first start).</summary>
    public int Starts { get; private set; }

    public int? Pid => Running() is { } p ? p.Id : null;

    public bool IsRunning => Running() is not null;

    /// <summary>The exit code of the last process once it exited (null while running or never started).</summary>
    public int? ExitCode
    {
        get
        {
            try { return Volatile.Read(ref _process) is { HasExited: true } p ? p.ExitCode : null; }
            catch (InvalidOperationException) { return null; } // replaced meanwhile
        }
    }

    /// <summary>The current process if it runs (read once: another task may be replacing it).</summary>
    private Process? Running()
    {
        try { return Volatile.Read(ref _process) is { HasExited: false } p ? p : null; }
        catch (InvalidOperationException) { return null; } // disposed by a restart meanwhile
    }

    /// <summary>
    /// The node's last line about leaving the cluster or failing (the split-brain resolver's decision,
    /// a downing, coordinated shutdown, an unhandled exception), shortened; "no reason printed" otherwise.
    /// </summary>
    public string WhyExited()
    {
        string[] lines;
        lock (_logGate) lines = [.. _tail];
        string[] markers = ["SBR", "Split Brain", "split-brain", "downing", "Downing", "marked as Down", "Unhandled exception", "Fatal", "fail: Broker", "crit:"];
        for (var i = lines.Length - 1; i >= 0; i--)
        {
            var line = lines[i];
            if (!markers.Any(m => line.Contains(m, StringComparison.Ordinal))) continue;
            line = line.Trim();
            return line.Length > 240 ? line[..240] + "…" : line;
        }
        return "no reason printed";
    }

    /// <summary>Starts a new process for the node (the previous one must have exited).</summary>
    public void Start()
    {
        if (IsRunning) throw new InvalidOperationException($"{Name} is running");
        var previous = _process;
        var psi = new ProcessStartInfo(DotnetHost(), [_serverDll])
        {
            WorkingDirectory = Path.GetDirectoryName(LogPath)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in _environment) psi.Environment[k] = v;
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        if (!process.Start()) throw new InvalidOperationException($"{Name}: the process did not start");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Volatile.Write(ref _process, process);
        previous?.Dispose();
        Starts++;
        Write($"==== soak: {Name} start #{Starts}, pid {process.Id}, at {Clock.Now:0.0}s");
    }

    public static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private void Write(string? line)
    {
        if (line is null) return;
        lock (_logGate)
        {
            try { _log.WriteLine(line); } catch (ObjectDisposedException) { /* stopped */ }
            _tail.Enqueue(line);
            if (_tail.Count > 400) _tail.Dequeue();
        }
    }

    /// <summary>Waits until <c>/readyz</c> answers 200 (Up in the cluster, the log and the session store answer).</summary>
    public async Task WaitReadyAsync(TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Clock.Now + timeout.TotalSeconds;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (!IsRunning) throw new InvalidOperationException($"{Name} exited with {ExitCode} (see {LogPath})");
            try
            {
                using var r = await Http.GetAsync($"http://127.0.0.1:{HttpPort}/readyz", ct);
                if (r.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                // not listening yet
            }
            if (Clock.Now > deadline) throw new TimeoutException($"{Name} was not ready within {timeout.TotalSeconds:0}s (see {LogPath})");
            await Task.Delay(250, ct);
        }
    }

    /// <summary>kill -9, and waits (bounded) until the process is gone.</summary>
    public async Task KillAsync()
    {
        if (_process is not { } p || p.HasExited) return;
        Signals.TrySend(p.Id, Signals.Kill);
        await WaitExitAsync(p, TimeSpan.FromSeconds(15));
    }

    /// <summary>SIGTERM, then waits up to <paramref name="timeout"/>; a process still running then is killed. True when it exited by itself.</summary>
    public async Task<bool> TerminateAsync(TimeSpan timeout)
    {
        if (_process is not { } p || p.HasExited) return true;
        Signals.TrySend(p.Id, Signals.Term);
        if (await WaitExitAsync(p, timeout)) return true;
        Signals.TrySend(p.Id, Signals.Kill);
        await WaitExitAsync(p, TimeSpan.FromSeconds(15));
        return false;
    }

    private static async Task<bool> WaitExitAsync(Process p, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The resident set size of the running process in MiB (null when it is not running).</summary>
    public double? RssMiB() => Pid is { } pid ? Rss.MiB(pid) : null;

    public async ValueTask DisposeAsync()
    {
        await TerminateAsync(TimeSpan.FromSeconds(15));
        _process?.Dispose();
        lock (_logGate) _log.Dispose();
    }
}

/// <summary>Resident memory of a process, from <c>/proc/&lt;pid&gt;/status</c>.</summary>
public static class Rss
{
    public static double? MiB(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var kb = long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0]);
                return kb / 1024.0;
            }
        }
        catch (IOException)
        {
            // gone
        }
        return null;
    }
}
