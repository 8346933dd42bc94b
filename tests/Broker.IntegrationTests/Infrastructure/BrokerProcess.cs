using System.Diagnostics;
using System.Text;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// A broker node as a child process (<c>dotnet Broker.Server.dll</c> from the test's output
/// directory), configured by environment variables and a temporary HOCON file. Its stdout and
/// stderr are kept (and written to a log file) for diagnostics. <see cref="Kill"/> is
/// <c>kill -9</c>; <see cref="StopAsync"/> is SIGTERM.
/// </summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly List<(DateTime At, string Line)> _lines = [];
    private readonly StreamWriter _log;
    private readonly string _configFile;

    private BrokerProcess(string name, Process process, int httpPort, int clusterPort, StreamWriter log, string logPath, string configFile)
    {
        Name = name;
        _process = process;
        HttpPort = httpPort;
        ClusterPort = clusterPort;
        _log = log;
        LogPath = logPath;
        _configFile = configFile;
        HttpAddress = $"http://127.0.0.1:{httpPort}";
        WsUri = new Uri($"ws://127.0.0.1:{httpPort}/ws");
    }

    public string Name { get; }
    public int HttpPort { get; }
    public int ClusterPort { get; }
    public string HttpAddress { get; }
    public Uri WsUri { get; }
    public string LogPath { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>Akka.Remote address of a node listening on <paramref name="clusterPort"/>.</summary>
    public static string SeedAddress(int clusterPort) => $"akka.tcp://broker@127.0.0.1:{clusterPort}";

    /// <summary>Everything the process wrote so far.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>Every line the process wrote so far, with the time the test received it (UTC).</summary>
    public List<(DateTime At, string Line)> TimedLines
    {
        get { lock (_output) return [.. _lines]; }
    }

    /// <summary>When the first line containing <paramref name="text"/> after <paramref name="after"/> arrived, if one did.</summary>
    public DateTime? FirstLineAt(string text, DateTime after)
    {
        lock (_output)
        {
            foreach (var (at, line) in _lines)
                if (at >= after && line.Contains(text, StringComparison.Ordinal)) return at;
        }
        return null;
    }

    /// <summary>When the last line containing <paramref name="text"/> after <paramref name="after"/> arrived, if one did.</summary>
    public DateTime? LastLineAt(string text, DateTime after)
    {
        lock (_output)
        {
            for (var i = _lines.Count - 1; i >= 0 && _lines[i].At >= after; i--)
                if (_lines[i].Line.Contains(text, StringComparison.Ordinal)) return _lines[i].At;
        }
        return null;
    }

    /// <summary>Starts the process (it is not ready yet: see <see cref="WaitReadyAsync"/>).</summary>
    /// <param name="config">Extra HOCON lines, written to the file named by BROKER_CONFIG.</param>
    public static BrokerProcess Start(
        string name, int httpPort, int clusterPort, IEnumerable<string> seeds,
        string kafkaBootstrap, string devKafkaAdmin, IEnumerable<string>? config = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var dir = AppContext.BaseDirectory;
        var server = Path.Combine(dir, "Broker.Server.dll");
        if (!File.Exists(server)) throw new FileNotFoundException("the broker server is not in the test output directory", server);
        var work = Path.Combine(Path.GetTempPath(), "broker-processes");
        Directory.CreateDirectory(work);
        var stamp = $"{name}-{Guid.NewGuid():N}";
        var configFile = Path.Combine(work, stamp + ".conf");
        File.WriteAllLines(configFile, config ?? []);
        var logPath = Path.Combine(work, stamp + ".log");

        var psi = new ProcessStartInfo(DotnetHost(), [server])
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        var env = psi.Environment;
        env["BROKER_HTTP_HOST"] = "127.0.0.1";
        env["BROKER_HTTP_PORT"] = httpPort.ToString();
        env["BROKER_ADMIN_PORT"] = "0";
        env["BROKER_CLUSTER_HOST"] = "127.0.0.1";
        env["BROKER_CLUSTER_PORT"] = clusterPort.ToString();
        env["BROKER_SEEDS"] = string.Join(",", seeds);
        env["BROKER_KAFKA_BOOTSTRAP"] = kafkaBootstrap;
        env["BROKER_KAFKA_EMBEDDED"] = "off";
        env["BROKER_TOPIC_CREATION"] = "devkafka";
        env["BROKER_DEVKAFKA_ADMIN"] = devKafkaAdmin;
        env["BROKER_CONFIG"] = configFile;
        env["ASPNETCORE_ENVIRONMENT"] = "Production";
        env["DOTNET_gcServer"] = "0";
        env["Logging__LogLevel__Microsoft"] = "Warning";
        if (environment is not null) foreach (var (k, v) in environment) env[k] = v;

        var log = new StreamWriter(logPath, append: false, new UTF8Encoding(false)) { AutoFlush = true };
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var node = new BrokerProcess(name, process, httpPort, clusterPort, log, logPath, configFile);
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        if (!process.Start()) throw new InvalidOperationException($"{name}: the process did not start");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    public static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            _output.AppendLine(line);
            _lines.Add((DateTime.UtcNow, line));
            try { _log.WriteLine(line); } catch (ObjectDisposedException) { /* disposed */ }
        }
    }

    /// <summary>
    /// Waits (bounded) until /healthz answers and a publish through this node is acknowledged,
    /// i.e. the node is in the cluster and the topic region can allocate shards.
    /// </summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
        {
            while (true)
            {
                ThrowIfExited();
                try
                {
                    var r = await http.GetAsync(HttpAddress + "/healthz");
                    if (r.IsSuccessStatusCode) break;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // not listening yet
                }
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"{Name}: /healthz did not answer within {timeout}\n{Output}");
                await Task.Delay(200);
            }
        }
        var attempt = 0;
        while (true)
        {
            ThrowIfExited();
            attempt++;
            try
            {
                await using var client = await WsClient.ConnectAsync(WsUri);
                var id = $"ready-{attempt}";
                await client.SendAsync(new { type = "publish", id, topic = $"ready.{Name}", data = new { attempt } });
                var reply = await client.ReplyToAsync(id, timeout: TimeSpan.FromSeconds(30));
                if ((string?)reply["type"] == "ack") return;
            }
            catch (Exception e) when (e is System.Net.WebSockets.WebSocketException or TimeoutException or InvalidOperationException or OperationCanceledException)
            {
                // the cluster is not formed yet
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{Name}: no publish was acknowledged within {timeout}\n{Output}");
            await Task.Delay(500);
        }
    }

    private void ThrowIfExited()
    {
        if (_process.HasExited) throw new InvalidOperationException($"{Name} exited with {_process.ExitCode}\n{Output}");
    }

    /// <summary>SIGSTOP: the node stops in its tracks (no heartbeats, no answers) until <see cref="Resume"/>, like a long pause.</summary>
    public void Freeze() => Signals.Freeze(Pid);

    /// <summary>SIGCONT after <see cref="Freeze"/>.</summary>
    public void Resume() => Signals.Resume(Pid);

    /// <summary>Waits (bounded) for the process to end by itself and returns its exit code.</summary>
    public async Task<int> ExitCodeAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout}\n{Output}");
        }
        return _process.ExitCode;
    }

    /// <summary>kill -9: the process and anything it started die at once.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        if (!_process.WaitForExit(10_000)) throw new InvalidOperationException($"{Name} did not die");
    }

    /// <summary>SIGTERM, then waits (bounded) for the process to exit; kills it if it does not.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString()]) { UseShellExecute = false })!)
                await kill.WaitForExitAsync();
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Kill();
                throw new TimeoutException($"{Name} did not exit within {timeout} of SIGTERM\n{Output}");
            }
        }
        return _process.ExitCode;
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // never started or already gone
        }
        _process.Dispose();
        lock (_output) _log.Dispose();
        try { File.Delete(_configFile); } catch (IOException) { /* best effort */ }
        return ValueTask.CompletedTask;
    }
}
