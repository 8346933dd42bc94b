using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// The standalone Kafka-protocol log (<c>dotnet Broker.DevKafka.dll --port 0</c>, as
/// <c>scripts/cluster.sh</c> runs it) as a child process: it keeps the history while broker
/// processes are killed and restarted. Its addresses are read from what it prints on start.
/// </summary>
public sealed partial class DevKafkaProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private DevKafkaProcess(Process process) => _process = process;

    /// <summary>bootstrap.servers of the log.</summary>
    public string Bootstrap { get; private set; } = "";

    /// <summary>host:port of its topic-creation endpoint (broker.kafka.devkafka-admin).</summary>
    public string Admin { get; private set; } = "";

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public static async Task<DevKafkaProcess> StartAsync(TimeSpan? timeout = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Broker.DevKafka.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException("Broker.DevKafka is not in the test output directory", dll);
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var process = new Process
        {
            StartInfo = new ProcessStartInfo(host, [dll, "--host", "127.0.0.1", "--port", "0"])
            {
                WorkingDirectory = AppContext.BaseDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            },
        };
        var log = new DevKafkaProcess(process);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (log._output) log._output.AppendLine(line);
            if (BootstrapLine().Match(line) is { Success: true } b) log.Bootstrap = b.Groups[1].Value;
            if (AdminLine().Match(line) is { Success: true } a) log.Admin = a.Groups[1].Value;
            if (log.Bootstrap.Length > 0 && log.Admin.Length > 0) ready.TrySetResult();
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            await log.DisposeAsync();
            throw new TimeoutException("Broker.DevKafka did not print its addresses:\n" + log.Output);
        }
        return log;
    }

    [GeneratedRegex(@"listening on (\S+) \(bootstrap\.servers\)")]
    private static partial Regex BootstrapLine();

    [GeneratedRegex(@"Topic creation endpoint on (\S+) ")]
    private static partial Regex AdminLine();

    public ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
