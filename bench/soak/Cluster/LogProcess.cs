using System.Diagnostics;
using System.Text;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.Soak.Cluster;

/// <summary>
/// The standalone Kafka-protocol log (<c>dotnet Broker.DevKafka.dll</c>, as <c>scripts/cluster.sh</c>
/// runs it) as a child process: it keeps every record while broker nodes die and restart. The
/// "log paused" fault freezes it with SIGSTOP (its sockets stay open; nothing is read or answered)
/// and resumes it with SIGCONT.
/// </summary>
public sealed class LogProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _gate = new();
    private bool _frozen;

    private LogProcess(Process process, StreamWriter log, int port, int adminPort)
    {
        _process = process;
        _log = log;
        Bootstrap = $"127.0.0.1:{port}";
        Admin = $"127.0.0.1:{adminPort}";
    }

    /// <summary>bootstrap.servers of the log.</summary>
    public string Bootstrap { get; }

    /// <summary>host:port of its topic-creation endpoint (broker.kafka.devkafka-admin).</summary>
    public string Admin { get; }

    public int Pid => _process.Id;

    public static async Task<LogProcess> StartAsync(string devKafkaDll, int port, int adminPort, string logPath, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(NodeProcess.DotnetHost(),
            [devKafkaDll, "--host", "127.0.0.1", "--port", port.ToString(), "--admin-port", adminPort.ToString()])
        {
            WorkingDirectory = Path.GetDirectoryName(logPath)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var writer = new StreamWriter(logPath, append: true, new UTF8Encoding(false)) { AutoFlush = true };
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var log = new LogProcess(process, writer, port, adminPort);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (log._gate)
            {
                try { writer.WriteLine(line); } catch (ObjectDisposedException) { /* stopped */ }
            }
            if (line.StartsWith("Topic creation endpoint on", StringComparison.Ordinal)) ready.TrySetResult();
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"Broker.DevKafka exited (see {logPath})"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60), ct);
        }
        catch
        {
            await log.DisposeAsync();
            throw;
        }
        return log;
    }

    /// <summary>SIGSTOP.</summary>
    public void Freeze()
    {
        lock (_gate)
        {
            Signals.TrySend(_process.Id, Signals.Stop);
            _frozen = true;
        }
    }

    /// <summary>SIGCONT.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            Signals.TrySend(_process.Id, Signals.Cont);
            _frozen = false;
        }
    }

    public double? RssMiB() => _process.HasExited ? null : Rss.MiB(_process.Id);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                if (_frozen) Resume();
                Signals.TrySend(_process.Id, Signals.Term);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try { await _process.WaitForExitAsync(cts.Token); }
                catch (OperationCanceledException)
                {
                    Signals.TrySend(_process.Id, Signals.Kill);
                    await _process.WaitForExitAsync();
                }
            }
        }
        catch (InvalidOperationException)
        {
            // never started
        }
        _process.Dispose();
        lock (_gate) _log.Dispose();
    }
}
