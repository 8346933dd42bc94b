using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.IntegrationTests;

/// <summary>
/// The chaos soak's short mode (bench/soak, bench/README.md "Chaos soak") as a process, as CI runs it: three
/// broker processes on a standalone Kafka-protocol log (and the PostgreSQL of BROKER_TEST_PG behind
/// the soak's own proxy, else SQLite), one kill -9, one SIGTERM and one drain with restarts, the log
/// frozen past produce-timeout, the database cut, clients aborted mid-frame, a slow reader closed
/// with 1013, subscriber restarts. The soak stops everything it started (by PID); the test kills
/// the soak's process tree if it overruns.
/// </summary>
public sealed class SoakTests(ITestOutputHelper output)
{
    /// <summary>The short mode's budget on a loaded 2-core machine; the process is killed after <see cref="HardLimit"/>.</summary>
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan HardLimit = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Short_chaos_soak_reports_zero_for_every_must_be_zero_within_three_minutes()
    {
        var dir = Directory.CreateTempSubdirectory("soak-test-").FullName;
        var json = Path.Combine(dir, "soak.json");
        var soak = Path.Combine(AppContext.BaseDirectory, "Broker.Soak.dll");
        Assert.True(File.Exists(soak), $"the soak is not in the test output directory: {soak}");
        var started = DateTime.UtcNow;
        var (exit, stdout, stderr) = await Command.RunAsync(BrokerProcess.DotnetHost(),
            [soak, "--mode", "short", "--db-fault", "cut", "--json", json, "--out", Path.Combine(dir, "soak.md"), "--work", Path.Combine(dir, "work")],
            AppContext.BaseDirectory, HardLimit);
        var took = DateTime.UtcNow - started;
        output.WriteLine(stdout);
        output.WriteLine(stderr);
        Assert.True(exit != 2 && File.Exists(json), $"the soak did not run (exit {exit}); see the output above");

        var result = JsonNode.Parse(await File.ReadAllTextAsync(json))!.AsObject();
        var failures = result["figures"]!.AsObject()
            .Where(f => (bool)f.Value!["must_be_zero"]! && (long)f.Value!["value"]! != 0)
            .Select(f => $"{f.Value!["label"]}: {f.Value!["value"]} (e.g. {string.Join("; ", f.Value!["examples"]!.AsArray().Take(3))})")
            .ToList();
        Assert.True(failures.Count == 0, "the soak found:\n" + string.Join("\n", failures));
        Assert.Equal(0, exit);
        var faults = result["faults"]!.AsArray().Select(f => (string)f!["kind"]!).ToList();
        foreach (var kind in new[] { "kill -9 + restart", "SIGTERM + restart", "drain + restart", "log paused (SIGSTOP)", "client aborted mid-frame", "slow reader", "subscriber restart" })
            Assert.Contains(kind, faults);
        // With the shared PostgreSQL of the tests, the database fault is the soak's own proxy cut: the
        // server itself is never stopped (other test classes use it at the same time).
        if (Environment.GetEnvironmentVariable("BROKER_TEST_PG") is { Length: > 0 })
        {
            Assert.Contains("database cut", faults);
            Assert.DoesNotContain("database stopped", faults);
        }
        Assert.True(took <= Budget, $"the short mode took {took.TotalSeconds:0} s (budget {Budget.TotalSeconds:0} s)");
        Directory.Delete(dir, recursive: true); // kept when the test fails: the nodes' logs are in it
    }
}
