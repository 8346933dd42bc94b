using System.Diagnostics;
using System.Runtime.InteropServices;
using Broker.Soak;

SoakOptions o;
try
{
    o = SoakOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    if (e.Message.Length > 0) Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(SoakOptions.Usage);
    return 2;
}

// Ctrl+C, SIGTERM, SIGHUP (the terminal closed) and SIGQUIT end the run early: the finally blocks
// stop every process it started (and start a PostgreSQL it stopped). Only SIGKILL cannot be handled.
using var cancel = new CancellationTokenSource();
var signals = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT }
    .Select(s => PosixSignalRegistration.Create(s, ctx =>
    {
        ctx.Cancel = true;
        cancel.Cancel();
    }))
    .ToList();

var root = SoakOptions.RepositoryRoot();
var soak = new Soak(o);
SoakResult result;
try
{
    result = await soak.RunAsync(cancel.Token);
}
catch (Exception e)
{
    result = soak.Result;
    result.Failure = e is OperationCanceledException ? "interrupted" : $"{e.GetType().Name}: {e.Message}";
    Console.Error.WriteLine(e);
}
result.Commit = root is null ? null : Git(root, "rev-parse --short HEAD") + " (" + Git(root, "rev-parse --abbrev-ref HEAD") + ")";

var markdown = result.ToMarkdown();
Console.WriteLine(markdown);
var outPath = o.Out ?? (root is not null ? Path.Combine(root, "bench", "results", "soak-latest.md") : "soak-latest.md");
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
await File.WriteAllTextAsync(outPath, markdown);
Console.Error.WriteLine($"wrote {outPath}");
if (o.Json is { } jsonPath)
{
    await File.WriteAllTextAsync(jsonPath, result.ToJson());
    Console.Error.WriteLine($"wrote {jsonPath}");
}
foreach (var registration in signals) registration.Dispose();
return result.Failure is not null && result.Checker is null ? 2 : result.Passed ? 0 : 1;

static string Git(string root, string args)
{
    try
    {
        using var git = Process.Start(new ProcessStartInfo("git", $"-C \"{root}\" {args}") { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = git.StandardOutput.ReadToEnd().Trim();
        git.WaitForExit(5000);
        return output;
    }
    catch (Exception)
    {
        return "?";
    }
}
