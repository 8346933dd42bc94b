using System.Diagnostics;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary><c>scripts/cluster.sh 3</c>: three nodes that people (and this test) can use from any node; it stops exactly what it started.</summary>
public sealed class ClusterScriptTests
{
    [Fact]
    public async Task Cluster_script_starts_three_nodes_that_share_topics_and_stops_all_of_them()
    {
        var root = Repository.Root();
        var ranges = TestCluster.FreePortRanges(4, 3); // HTTP, remoting, admin, Kafka (+ its topic endpoint)
        int[] http = [ranges[0], ranges[0] + 1, ranges[0] + 2];
        var logDir = Directory.CreateTempSubdirectory("cluster-sh-").FullName;
        var psi = new ProcessStartInfo("bash", ["scripts/cluster.sh", "3"])
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // The script uses consecutive ports from each base: free ranges outside the ephemeral ports.
        psi.Environment["HTTP_BASE"] = http[0].ToString();
        psi.Environment["REMOTE_BASE"] = ranges[1].ToString();
        psi.Environment["ADMIN_BASE"] = ranges[2].ToString();
        psi.Environment["KAFKA_PORT"] = ranges[3].ToString();
        psi.Environment["KAFKA_ADMIN_PORT"] = (ranges[3] + 1).ToString();
        psi.Environment["LOG_DIR"] = logDir;
#if DEBUG
        psi.Environment["CONFIG"] = "Debug";
#else
        psi.Environment["CONFIG"] = "Release";
#endif
        using var script = Process.Start(psi)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Text.StringBuilder();
        script.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data.StartsWith("Ctrl+C stops the cluster")) ready.TrySetResult();
        };
        script.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        script.BeginOutputReadLine();
        script.BeginErrorReadLine();
        List<int> children = [];
        try
        {
            await Task.WhenAny(ready.Task, script.WaitForExitAsync()).WaitAsync(TimeSpan.FromMinutes(3));
            Assert.True(ready.Task.IsCompleted, "cluster.sh did not start: " + output);
            children = Children(script.Id);
            Assert.Equal(4, children.Count); // one Kafka-protocol log, three nodes

            var nodes = Enumerable.Range(0, 3).Select(i => new Uri($"ws://127.0.0.1:{http[0] + i}/ws")).ToArray();
            await using var sub1 = await WsClient.ConnectAsync(nodes[0]);
            await using var sub3 = await WsClient.ConnectAsync(nodes[2]);
            await using var pub = await WsClient.ConnectAsync(nodes[1]);
            await sub1.SubscribeAsync("script.chat", "s");
            await sub3.SubscribeAsync("script.chat", "s");
            var pos = await PublishWhenClusterIsUp(pub);
            Assert.Equal(pos, (string?)(await sub1.ExpectAsync("message"))["pos"]);
            Assert.Equal(pos, (string?)(await sub3.ExpectAsync("message"))["pos"]);
        }
        finally
        {
            Process.Start("kill", ["-TERM", script.Id.ToString()])!.WaitForExit();
            await script.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        }
        // Every process it started is gone.
        foreach (var pid in children)
            Assert.False(File.Exists($"/proc/{pid}/status") && !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ"), $"process {pid} still runs");
    }

    /// <summary>The nodes may still be joining: a publish answered `unavailable` is retried (same id, so it is written once).</summary>
    private static async Task<string> PublishWhenClusterIsUp(WsClient pub)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (true)
        {
            var reply = await pub.RequestAsync(new { type = "publish", id = "hello", topic = "script.chat", data = "hello" }, "hello");
            if ((string?)reply["type"] == "ack") return (string)reply["pos"]!;
            deadline.Token.ThrowIfCancellationRequested();
        }
    }

    private static List<int> Children(int pid)
    {
        var path = $"/proc/{pid}/task/{pid}/children";
        return File.Exists(path)
            ? File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList()
            : [];
    }
}
