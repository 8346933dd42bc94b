using System.Diagnostics;
using System.Text.RegularExpressions;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>
/// <c>scripts/cluster.sh 3</c>, as people use it: three nodes usable from any node, each process's
/// PID printed, a node killed with <c>kill -9</c> while the others keep running, that node restarted
/// with <c>cluster.sh restart</c>, and on SIGTERM the nodes stopped before the Kafka-protocol log —
/// exactly the processes it started.
/// </summary>
public sealed partial class ClusterScriptTests
{
    private const string Topic = "script.chat";

    [Fact]
    public async Task Cluster_script_survives_a_killed_node_restarts_it_and_stops_the_nodes_before_the_log()
    {
        var root = Repository.Root();
        var ranges = FreePorts.Ranges(4, 3); // HTTP, remoting, admin, Kafka (+ its topic endpoint)
        int[] http = [ranges[0], ranges[0] + 1, ranges[0] + 2];
        var logDir = Directory.CreateTempSubdirectory("cluster-sh-").FullName;
        var environment = new Dictionary<string, string>
        {
            // The script uses consecutive ports from each base: free ranges outside the ephemeral ports.
            ["HTTP_BASE"] = http[0].ToString(),
            ["REMOTE_BASE"] = ranges[1].ToString(),
            ["ADMIN_BASE"] = ranges[2].ToString(),
            ["KAFKA_PORT"] = ranges[3].ToString(),
            ["KAFKA_ADMIN_PORT"] = (ranges[3] + 1).ToString(),
            ["LOG_DIR"] = logDir,
#if DEBUG
            ["CONFIG"] = "Debug",
#else
            ["CONFIG"] = "Release",
#endif
        };
        var psi = new ProcessStartInfo("bash", ["scripts/cluster.sh", "3"])
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        using var script = Process.Start(psi)!;
        var output = new ScriptOutput(script);
        var started = new List<int>();
        try
        {
            await output.WaitForLineAsync(l => l.StartsWith("Ctrl+C stops the cluster", StringComparison.Ordinal), TimeSpan.FromMinutes(3), script);

            // Every process's PID is printed, and they are exactly the script's children.
            var logPid = int.Parse(LogPid().Match(output.Text).Groups[1].Value);
            var nodePids = Enumerable.Range(1, 3).Select(i => NodePid(output.Text, i)).ToArray();
            started.AddRange([logPid, .. nodePids]);
            Assert.Equal(started.Order(), Children(script.Id).Order());

            var nodes = Enumerable.Range(0, 3).Select(i => new Uri($"ws://127.0.0.1:{http[0] + i}/ws")).ToArray();
            await using (var sub1 = await WsClient.ConnectAsync(nodes[0]))
            await using (var sub3 = await WsClient.ConnectAsync(nodes[2]))
            await using (var pub = await WsClient.ConnectAsync(nodes[1]))
            {
                await sub1.SubscribeAsync(Topic, "s");
                await sub3.SubscribeAsync(Topic, "s");
                var pos = await PublishUntilAckedAsync(pub, "hello");
                Assert.Equal(pos, (string?)(await sub1.ExpectAsync("message"))["pos"]);
                Assert.Equal(pos, (string?)(await sub3.ExpectAsync("message"))["pos"]);
            }

            // kill -9 of node 3: the script says so and keeps everything else running.
            Signals.Send(nodePids[2], Signals.Kill);
            await output.WaitForLineAsync(l => l.StartsWith($"node 3 (pid {nodePids[2]}) exited", StringComparison.Ordinal), TimeSpan.FromSeconds(30), script);
            Assert.False(script.HasExited);
            Assert.True(IsRunning(logPid) && IsRunning(nodePids[0]) && IsRunning(nodePids[1]), "a surviving process stopped");
            await using (var pub = await WsClient.ConnectAsync(nodes[0]))
                await PublishUntilAckedAsync(pub, "after the kill"); // the cluster downs node 3 and serves the topic elsewhere

            // `cluster.sh restart 3` from another shell starts it again (a new PID) and it serves.
            var (exit, stdout, stderr) = await Command.RunAsync("bash", ["scripts/cluster.sh", "restart", "3"], root, TimeSpan.FromSeconds(30), environment);
            Assert.True(exit == 0, stdout + stderr);
            await output.WaitForLineAsync(l => l.StartsWith("node 3: pid ", StringComparison.Ordinal) && !l.StartsWith($"node 3: pid {nodePids[2]} ", StringComparison.Ordinal),
                TimeSpan.FromSeconds(30), script);
            var restarted = NodePid(output.Text, 3, last: true);
            started.Add(restarted);
            await using (var pub = await ConnectWhenListeningAsync(nodes[2]))
                await PublishUntilAckedAsync(pub, "from the restarted node");
            var (_, status, _) = await Command.RunAsync("bash", ["scripts/cluster.sh", "status"], root, TimeSpan.FromSeconds(30), environment);
            Assert.Contains($"node3: pid {restarted} running", status);
        }
        finally
        {
            if (!script.HasExited) Signals.Send(script.Id, Signals.Term);
            await script.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        }

        // The nodes were stopped before the Kafka-protocol log, and every process it started is gone.
        var lines = output.Text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var logStopped = lines.FindIndex(l => l.StartsWith("stopped the Kafka-protocol log", StringComparison.Ordinal));
        Assert.True(logStopped >= 0, output.Text);
        for (var i = 1; i <= 3; i++)
        {
            var nodeStopped = lines.FindIndex(l => l.StartsWith($"stopped node {i} ", StringComparison.Ordinal));
            Assert.True(nodeStopped >= 0 && nodeStopped < logStopped, $"node {i} was not stopped before the log:\n{output.Text}");
        }
        foreach (var pid in started) Assert.False(IsRunning(pid), $"process {pid} still runs");
    }

    /// <summary>A node may still be joining, or the topic's writer moving after a node died: a publish answered `unavailable` is retried with the same id (written once).</summary>
    private static async Task<string> PublishUntilAckedAsync(WsClient pub, string data)
    {
        var id = "m-" + Guid.NewGuid().ToString("N");
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (true)
        {
            var reply = await pub.RequestAsync(new { type = "publish", id, topic = Topic, data }, id);
            if ((string?)reply["type"] == "ack") return (string)reply["pos"]!;
            Assert.Equal("unavailable", (string?)reply["code"]);
            deadline.Token.ThrowIfCancellationRequested();
        }
    }

    /// <summary>A node that was just started opens its port after a few seconds: connect once it does (bounded).</summary>
    private static async Task<WsClient> ConnectWhenListeningAsync(Uri node)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (true)
        {
            try
            {
                return await WsClient.ConnectAsync(node);
            }
            catch (System.Net.WebSockets.WebSocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200); // not listening yet
            }
        }
    }

    [GeneratedRegex(@"Kafka-protocol log \(in memory\): \S+, pid (\d+)")]
    private static partial Regex LogPid();

    private static int NodePid(string text, int node, bool last = false)
    {
        var matches = Regex.Matches(text, $@"^node {node}: pid (\d+) ", RegexOptions.Multiline);
        Assert.NotEmpty(matches);
        return int.Parse((last ? matches[^1] : matches[0]).Groups[1].Value);
    }

    private static bool IsRunning(int pid) =>
        File.Exists($"/proc/{pid}/status") && !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ");

    private static List<int> Children(int pid)
    {
        var path = $"/proc/{pid}/task/{pid}/children";
        return File.Exists(path)
            ? File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList()
            : [];
    }

    /// <summary>Everything the script printed (stdout and stderr), and a bounded wait for a line.</summary>
    private sealed class ScriptOutput
    {
        private readonly System.Text.StringBuilder _text = new();
        private readonly List<string> _lines = [];

        public ScriptOutput(Process script)
        {
            script.OutputDataReceived += (_, e) => Add(e.Data);
            script.ErrorDataReceived += (_, e) => Add(e.Data);
            script.BeginOutputReadLine();
            script.BeginErrorReadLine();
        }

        public string Text
        {
            get { lock (_text) return _text.ToString(); }
        }

        private void Add(string? line)
        {
            if (line is null) return;
            lock (_text)
            {
                _text.AppendLine(line);
                _lines.Add(line);
            }
        }

        public async Task WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, Process script)
        {
            try
            {
                await Wait.UntilAsync(() =>
                {
                    lock (_text)
                    {
                        if (_lines.Any(match)) return true;
                    }
                    if (script.HasExited) throw new InvalidOperationException("cluster.sh exited:\n" + Text);
                    return false;
                }, "cluster.sh printed the expected line", timeout);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException(e.Message + "; it printed:\n" + Text, e);
            }
        }
    }
}
