using System.Diagnostics;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// The broker binary run as a user runs it (<c>dotnet Broker.Server.dll</c>, the build in the test's
/// output directory, or <c>dotnet run --project</c>) from a working directory of its own, with exactly the environment a test gives:
/// no BROKER_* variable of the test process leaks in, and every port is 0 (a free one) unless the test
/// sets it, so runs never collide. Its output lines are kept in order (stdout and stderr).
/// </summary>
public sealed class BrokerCommand : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly bool _ownsDirectory;

    private BrokerCommand(Process process, string workingDirectory, bool ownsDirectory)
    {
        _process = process;
        WorkingDirectory = workingDirectory;
        _ownsDirectory = ownsDirectory;
    }

    /// <summary>The directory the broker runs in (relative paths resolve against it).</summary>
    public string WorkingDirectory { get; }

    /// <summary>Every line written so far, stdout and stderr in arrival order.</summary>
    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return [.. _lines]; }
    }

    /// <summary>Everything written so far, for assertion messages.</summary>
    public string Output => string.Join('\n', Lines);

    /// <param name="environment">Variables to set (a null value removes one of the defaults).</param>
    /// <param name="files">Files written into the working directory first (relative path → content).</param>
    /// <param name="workingDirectory">Where to run; null: a new temporary directory, deleted on dispose.</param>
    public static BrokerCommand Start(IReadOnlyDictionary<string, string?>? environment = null, IReadOnlyDictionary<string, string>? files = null,
        string? workingDirectory = null, params string[] args)
    {
        var server = Path.Combine(AppContext.BaseDirectory, "Broker.Server.dll");
        if (!File.Exists(server)) throw new FileNotFoundException("the broker server is not in the test output directory", server);
        return Launch([server, .. args], environment, files, workingDirectory);
    }

    /// <summary>
    /// The broker as the README's quick start runs it: <c>dotnet run --no-build -c Release --project
    /// &lt;repository&gt;/src/Broker.Server</c> (the Release build of the solution), otherwise as <see cref="Start"/>.
    /// </summary>
    public static BrokerCommand StartWithDotnetRun(IReadOnlyDictionary<string, string?>? environment = null, IReadOnlyDictionary<string, string>? files = null)
    {
        var project = Path.Combine(Repository.Root(), "src", "Broker.Server");
        var env = new Dictionary<string, string?>
        {
            ["DOTNET_NOLOGO"] = "1",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["MSBUILDDISABLENODEREUSE"] = "1", // no MSBuild node left running after the test
        };
        if (environment is not null) foreach (var (k, v) in environment) env[k] = v;
        return Launch(["run", "--no-build", "-c", "Release", "--project", project], env, files, workingDirectory: null);
    }

    private static BrokerCommand Launch(string[] hostArgs, IReadOnlyDictionary<string, string?>? environment, IReadOnlyDictionary<string, string>? files,
        string? workingDirectory)
    {
        var owns = workingDirectory is null;
        workingDirectory ??= Directory.CreateTempSubdirectory("broker-run-").FullName;
        if (files is not null) foreach (var (name, content) in files) File.WriteAllText(Path.Combine(workingDirectory, name), content);
        var psi = new ProcessStartInfo(DotnetHost(), hostArgs)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var name in psi.Environment.Keys.ToList())
            if (name.StartsWith("BROKER_", StringComparison.Ordinal) || name.StartsWith("Logging__", StringComparison.Ordinal) || name.StartsWith("ASPNETCORE_", StringComparison.Ordinal))
                psi.Environment.Remove(name);
        var env = new Dictionary<string, string?>
        {
            ["BROKER_HTTP_PORT"] = "0",
            ["BROKER_ADMIN_PORT"] = "0",
            ["BROKER_EMBEDDED_KAFKA_PORT"] = "0",
            ["BROKER_CLUSTER_PORT"] = "0",
            ["DOTNET_gcServer"] = "0",
        };
        if (environment is not null) foreach (var (k, v) in environment) env[k] = v;
        foreach (var (k, v) in env)
        {
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var command = new BrokerCommand(process, workingDirectory, owns);
        process.OutputDataReceived += (_, e) => command.Append(e.Data);
        process.ErrorDataReceived += (_, e) => command.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return command;
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_lines) _lines.Add(line);
    }

    /// <summary>The exit code, once the process ended (bounded: killed and failed after <paramref name="timeout"/>).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the broker did not exit within {timeout}:\n{Output}");
        }
        _process.WaitForExit(); // the output is complete once this returns
        return _process.ExitCode;
    }

    /// <summary>Waits (bounded) for a line that <paramref name="match"/> accepts; fails when the process exits first.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Lines.FirstOrDefault(match) is { } line) return line;
            if (_process.HasExited) throw new InvalidOperationException($"the broker exited with {_process.ExitCode}:\n{Output}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no such line within {timeout}:\n{Output}");
            await Task.Delay(50);
        }
    }

    /// <summary>SIGTERM, then waits (bounded) for the process to end.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
            using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString()]) { UseShellExecute = false })!)
                await kill.WaitForExitAsync();
        return await WaitForExitAsync(timeout);
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
        if (_ownsDirectory)
        {
            try { Directory.Delete(WorkingDirectory, recursive: true); } catch (IOException) { /* best effort */ }
        }
        return ValueTask.CompletedTask;
    }
}
