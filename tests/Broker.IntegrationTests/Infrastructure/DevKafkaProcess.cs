using System.Diagnostics;
using System.Text;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// A standalone Broker.DevKafka (the in-memory Kafka-protocol log) as a child process on free
/// loopback ports, as scripts/cluster.sh runs it: a log that a test can freeze (SIGSTOP — every
/// connection stays open and nothing is answered, like a Kafka broker stuck in a long pause or
/// behind a broken network) and resume (SIGCONT), or kill.
/// </summary>
public sealed class DevKafkaProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private bool _frozen;

    private DevKafkaProcess(Process process) => _process = process;

    /// <summary>bootstrap.servers of the log.</summary>
    public string BootstrapServers { get; private set; } = "";

    /// <summary>host:port of its topic-creation endpoint (broker.kafka.devkafka-admin).</summary>
    public string AdminAddress { get; private set; } = "";

    public int Pid => _process.Id;

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>Starts the log and waits (bounded) until it listens.</summary>
    public static async Task<DevKafkaProcess> StartAsync(TimeSpan? timeout = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Broker.DevKafka.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException("Broker.DevKafka is not in the test output directory", dll);
        var psi = new ProcessStartInfo(BrokerProcess.DotnetHost(), [dll, "--host", "127.0.0.1", "--port", "0", "--admin-port", "0"])
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["DOTNET_gcServer"] = "0";
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var log = new DevKafkaProcess(process);
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line) return;
            lock (log._output) log._output.AppendLine(line);
            const string bootstrap = "Kafka-protocol log listening on ";
            const string admin = "Topic creation endpoint on ";
            if (line.StartsWith(bootstrap, StringComparison.Ordinal)) log.BootstrapServers = line[bootstrap.Length..].Split(' ')[0];
            else if (line.StartsWith(admin, StringComparison.Ordinal))
            {
                log.AdminAddress = line[admin.Length..].Split(' ')[0];
                listening.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (log._output) log._output.AppendLine(e.Data);
        };
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("Broker.DevKafka exited:\n" + log.Output));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await listening.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
        }
        catch
        {
            await log.DisposeAsync();
            throw;
        }
        return log;
    }

    /// <summary>SIGSTOP: the log stops answering; connections stay open, requests wait in socket buffers.</summary>
    public void Freeze()
    {
        Signals.Freeze(Pid);
        _frozen = true;
    }

    /// <summary>SIGCONT: the log answers again, starting with what was sent while it was frozen.</summary>
    public void Resume()
    {
        Signals.Resume(Pid);
        _frozen = false;
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                if (_frozen) Signals.Resume(Pid);
                _process.Kill(entireProcessTree: true);
            }
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // never started or already gone
        }
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
