using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;
using Broker.Server.Configuration;
using Broker.Server.Hosting;

namespace Broker.IntegrationTests.Configuration;

/// <summary>
/// The broker process as a newcomer meets it: a bad value or a port in use stops it before Akka or
/// Kestrel start, with one line and exit code 2; relative paths are relative to where it was started;
/// the log of a default run fits on a screen and ends with the ready line.
/// </summary>
public sealed class StartupTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    private static bool IsReadyLine(string line) => line.Contains(" ready: WebSocket ws://", StringComparison.Ordinal);

    [Theory]
    [InlineData("BROKER_HTTP_PORT", "abc", "broker.http.port", "a port number from 0 to 65535")]
    [InlineData("BROKER_ADMIN_PORT", "70000", "broker.admin.port", "a port number from 0 to 65535")]
    [InlineData("BROKER_DASHBOARD", "nope", "broker.http.dashboard", "on or off")]
    [InlineData("BROKER_SEEDS", "garbage", "broker.cluster.seed-nodes", "akka.tcp://broker@10.0.0.1:4053")]
    [InlineData("BROKER_SBR_STRATEGY", "foo", "broker.cluster.split-brain-resolver.active-strategy", "keep-majority, keep-oldest, static-quorum or down-all")]
    [InlineData("BROKER_KAFKA_EMBEDDED", "maybe", "broker.kafka.embedded.enabled", "on, off or auto")]
    [InlineData("BROKER_MAX_FRAME_BYTES", "-5", "broker.websocket.max-frame-bytes", "a size such as 64 KiB")]
    [InlineData("BROKER_LOG_FORMAT", "xml", "broker.logging.format", "text or json")]
    [InlineData("BROKER_AUTH_MODE", "maybe", "broker.auth.mode", "off, optional or required")]
    [InlineData("BROKER_WS_COMPRESSION", "gzip", "broker.websocket.compression", "on or off")]
    [InlineData("BROKER_ADMIN_TOKEN_FILE", "no-such-token", "broker.admin.token-file", "a readable file holding the admin API's token")]
    public async Task A_bad_environment_value_stops_the_broker_with_one_line_and_exit_code_2(string variable, string value, string key, string expected)
    {
        await using var broker = BrokerCommand.Start(new Dictionary<string, string?> { [variable] = value });
        Assert.Equal(2, await broker.WaitForExitAsync(ExitTimeout));
        // One line and nothing else: neither Akka nor Kestrel wrote anything, no stack trace.
        var line = Assert.Single(broker.Lines);
        Assert.StartsWith($"broker: invalid configuration: {key} = \"{value}\" (from env {variable}): expected ", line);
        Assert.Contains(expected, line);
    }

    [Theory]
    [InlineData("broker.http.port = eighty", "broker.http.port", "eighty", "a port number")]
    [InlineData("broker.websocket.keepalive-interval = fast", "broker.websocket.keepalive-interval", "fast", "a duration greater than 0 such as 500ms, 15s")]
    [InlineData("broker.websocket.outbound-buffer-bytes = \"-1 MiB\"", "broker.websocket.outbound-buffer-bytes", "-1 MiB", "a size such as")]
    public async Task A_bad_value_in_the_config_file_names_the_file(string hocon, string key, string value, string expected)
    {
        // Environment variables win over the file: the test's default for the key must not be set.
        var variable = BrokerConfig.EnvironmentKeys.FirstOrDefault(e => e.Value == key).Key;
        var environment = new Dictionary<string, string?> { ["BROKER_CONFIG"] = "bad.conf" };
        if (variable is not null) environment[variable] = null;
        await using var broker = BrokerCommand.Start(environment, new Dictionary<string, string> { ["bad.conf"] = hocon });
        Assert.Equal(2, await broker.WaitForExitAsync(ExitTimeout));
        var line = Assert.Single(broker.Lines);
        Assert.StartsWith($"broker: invalid configuration: {key} = \"{value}\" (from {Path.Combine(broker.WorkingDirectory, "bad.conf")}): expected ", line);
        Assert.Contains(expected, line);
    }

    [Fact]
    public async Task A_missing_config_file_is_one_line_with_its_absolute_path_and_verbose_adds_the_stack_trace()
    {
        await using var broker = BrokerCommand.Start(new Dictionary<string, string?> { ["BROKER_CONFIG"] = "missing.conf" });
        Assert.Equal(2, await broker.WaitForExitAsync(ExitTimeout));
        var line = Assert.Single(broker.Lines);
        Assert.Equal($"broker: cannot read the configuration file BROKER_CONFIG=missing.conf ({Path.Combine(broker.WorkingDirectory, "missing.conf")}): no such file", line);

        await using var verbose = BrokerCommand.Start(new Dictionary<string, string?> { ["BROKER_CONFIG"] = "missing.conf" }, workingDirectory: broker.WorkingDirectory, args: "--verbose");
        Assert.Equal(2, await verbose.WaitForExitAsync(ExitTimeout));
        Assert.Equal(line, verbose.Lines[0]);
        Assert.Contains(verbose.Lines, l => l.Contains("StartupException", StringComparison.Ordinal));
        Assert.Contains(verbose.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BROKER_VERBOSE_adds_the_stack_trace_to_a_bad_value()
    {
        await using var broker = BrokerCommand.Start(new Dictionary<string, string?> { ["BROKER_HTTP_PORT"] = "abc", ["BROKER_VERBOSE"] = "1" });
        Assert.Equal(2, await broker.WaitForExitAsync(ExitTimeout));
        Assert.Equal("broker: invalid configuration: broker.http.port = \"abc\" (from env BROKER_HTTP_PORT): expected a port number from 0 to 65535 (0 = a free port)",
            broker.Lines[0]);
        Assert.Contains(broker.Lines, l => l.Contains("SettingsException", StringComparison.Ordinal));
        Assert.Contains(broker.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_http_port_in_use_is_reported_with_the_setting_to_change_before_akka_starts()
    {
        using var taken = Occupy(out var port);
        await using var broker = BrokerCommand.Start(new Dictionary<string, string?> { ["BROKER_HTTP_PORT"] = port.ToString() });
        Assert.Equal(2, await broker.WaitForExitAsync(ExitTimeout));
        var line = Assert.Single(broker.Lines);
        Assert.Equal($"broker: cannot listen on 127.0.0.1:{port} for the HTTP port (WebSockets, dashboard, health) (broker.http.port): the port is in use; " +
            "is another broker running? set BROKER_HTTP_PORT to a free port (0 = any free port)", line);
    }

    [Fact]
    public async Task The_embedded_log_port_in_use_asks_whether_a_kafka_runs_already()
    {
        using var taken = Occupy(out var port);
        await using var broker = BrokerCommand.Start(new Dictionary<string, string?> { ["BROKER_EMBEDDED_KAFKA_PORT"] = port.ToString() });
        Assert.Equal(2, await broker.WaitForExitAsync(ExitTimeout));
        var line = Assert.Single(broker.Lines);
        Assert.Equal($"broker: cannot listen on 127.0.0.1:{port} for the embedded Kafka-protocol log (broker.kafka.embedded.port): the port is in use; " +
            "is a Kafka already running? set BROKER_KAFKA_BOOTSTRAP to use it, or BROKER_EMBEDDED_KAFKA_PORT to move the embedded log", line);
    }

    [Fact]
    public async Task A_default_run_logs_at_most_twenty_lines_and_ends_with_the_ready_line()
    {
        await using var broker = BrokerCommand.Start();
        var ready = await broker.WaitForLineAsync(IsReadyLine, ReadyTimeout);
        var startup = broker.Lines.TakeWhile(l => l != ready).Append(ready).ToList();
        Assert.True(startup.Count <= 20, $"{startup.Count} lines before the ready line:\n{string.Join('\n', startup)}");
        Assert.Matches(@"ready: WebSocket ws://127\.0\.0\.1:\d+/ws, dashboard http://127\.0\.0\.1:\d+/, admin API http://127\.0\.0\.1:\d+/admin", ready);
        // One timestamp per line: the console formatter's, not Akka's own as well.
        Assert.All(startup, l => Assert.DoesNotMatch(@"\[\d+/\d+/\d{4} ", l));
        Assert.True(startup.Any(l => l.Contains("Akka.Cluster.Cluster", StringComparison.Ordinal) && l.Contains("is JOINING itself", StringComparison.Ordinal)),
            "membership is logged:\n" + string.Join('\n', startup));

        // Requests are not logged by default: a probe and a dashboard poll add no line.
        using var http = new HttpClient();
        var url = System.Text.RegularExpressions.Regex.Match(ready, @"dashboard (http://\S+)/,").Groups[1].Value;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(url + "/healthz")).StatusCode);
        await http.GetAsync(url + "/api/cluster");
        var before = broker.Lines.Count;
        Assert.Equal(0, await broker.StopAsync(ExitTimeout));
        Assert.DoesNotContain(broker.Lines, l => l.Contains("Request starting", StringComparison.Ordinal) || l.Contains("/healthz", StringComparison.Ordinal));
        Assert.True(before >= startup.Count);
        // Shutting down, too, every line has the one format (none in Akka's own, with its second timestamp).
        Assert.All(broker.Lines, l => Assert.Matches(@"^\d\d:\d\d:\d\d (info|warn|fail|crit|dbug): ", l));
    }

    [Fact]
    public async Task A_relative_config_file_and_sqlite_path_resolve_against_the_directory_the_broker_runs_in()
    {
        // The broker runs in a directory of its own, not where its binary is.
        await using var broker = BrokerCommand.Start(new Dictionary<string, string?> { ["BROKER_CONFIG"] = "my.conf" }, new Dictionary<string, string>
        {
            ["my.conf"] = """
                broker.http.dashboard = off
                broker.persistence.sqlite.path = "state/sessions.db"
                broker.http.prot = 1
                """,
        });
        var dir = broker.WorkingDirectory;
        Assert.NotEqual(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory), dir);
        var ready = await broker.WaitForLineAsync(IsReadyLine, ReadyTimeout);
        Assert.Contains("dashboard off", ready);
        // The startup log names the absolute paths of the file read and of the SQLite store.
        Assert.Contains(broker.Lines, l => l.Contains($"configuration: hocon/broker.conf (built in) < {Path.Combine(dir, "my.conf")} < env ", StringComparison.Ordinal));
        Assert.Contains(broker.Lines, l => l.EndsWith($"durable sessions: sqlite {Path.Combine(dir, "state", "sessions.db")}", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(dir, "state", "sessions.db")));
        // An unknown key is a warning with the key meant; the node starts anyway.
        Assert.Contains(broker.Lines, l => l.Contains("warn:", StringComparison.Ordinal) && l.EndsWith("unknown key broker.http.prot — did you mean broker.http.port?", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Dotnet_run_from_another_directory_reads_a_relative_config_file_from_there()
    {
        // The README's BROKER_CONFIG=my.conf dotnet run --project src/Broker.Server, typed in a
        // directory that is neither the project's nor the binary's.
        await using var broker = BrokerCommand.StartWithDotnetRun(new Dictionary<string, string?> { ["BROKER_CONFIG"] = "my.conf" },
            new Dictionary<string, string> { ["my.conf"] = "broker.http.dashboard = off\n" });
        var dir = broker.WorkingDirectory;
        var ready = await broker.WaitForLineAsync(IsReadyLine, ReadyTimeout);
        Assert.Contains("dashboard off", ready);
        Assert.Contains(broker.Lines, l => l.Contains($"configuration: hocon/broker.conf (built in) < {Path.Combine(dir, "my.conf")} < env ", StringComparison.Ordinal));
        // The default SQLite path is relative to the same directory.
        Assert.Contains(broker.Lines, l => l.EndsWith($"durable sessions: sqlite {Path.Combine(dir, "data", "broker.db")}", StringComparison.Ordinal));
        Assert.Equal(0, await broker.StopAsync(ExitTimeout));
    }

    [Fact]
    public async Task Healthcheck_without_a_url_asks_the_node_of_the_configuration_and_fails_when_nothing_listens()
    {
        var port = FreePorts.Ranges(1, 1)[0];
        // The port comes from the configuration file only (BrokerCommand's BROKER_HTTP_PORT=0 removed).
        var environment = new Dictionary<string, string?> { ["BROKER_CONFIG"] = "node.conf", ["BROKER_HTTP_PORT"] = null };
        var files = new Dictionary<string, string> { ["node.conf"] = $"broker.http.port = {port}\nbroker.health.healthcheck-timeout = 3s\n" };
        await using var broker = BrokerCommand.Start(environment, files);
        await broker.WaitForLineAsync(IsReadyLine, ReadyTimeout);
        var url = $"http://127.0.0.1:{port}/readyz";
        using (var http = new HttpClient())
            await Wait.UntilAsync(async () => (await http.GetAsync(url)).IsSuccessStatusCode, "the node is ready", ReadyTimeout);

        await using (var check = BrokerCommand.Start(environment, workingDirectory: broker.WorkingDirectory, args: HealthCheckCommand.Flag))
        {
            Assert.True(await check.WaitForExitAsync(ExitTimeout) == 0, check.Output);
            Assert.StartsWith($"{url}: 200 ", Assert.Single(check.Lines));
        }

        Assert.Equal(0, await broker.StopAsync(ExitTimeout));
        await using (var check = BrokerCommand.Start(environment, workingDirectory: broker.WorkingDirectory, args: HealthCheckCommand.Flag))
        {
            Assert.True(await check.WaitForExitAsync(ExitTimeout) == HealthCheckCommand.Unhealthy, check.Output);
            var line = Assert.Single(check.Lines);
            Assert.StartsWith($"{url}: ", line);
            Assert.Contains("refused", line, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Healthcheck_without_a_url_needs_a_fixed_http_port()
    {
        await using var check = BrokerCommand.Start(new Dictionary<string, string?> { ["BROKER_HTTP_PORT"] = "0" }, args: HealthCheckCommand.Flag);
        Assert.Equal(HealthCheckCommand.Unhealthy, await check.WaitForExitAsync(ExitTimeout));
        Assert.StartsWith("broker: invalid configuration: broker.http.port = \"0\" (from env BROKER_HTTP_PORT): expected a fixed port for --healthcheck without a URL",
            Assert.Single(check.Lines));
    }

    [Fact]
    public async Task With_kafka_down_librdkafka_lines_go_through_the_json_log_rate_limited()
    {
        using var closed = Occupy(out var port);
        closed.Stop(); // a port nothing listens on
        const int burst = 3;
        await using var broker = BrokerCommand.Start(new Dictionary<string, string?>
        {
            ["BROKER_KAFKA_BOOTSTRAP"] = $"127.0.0.1:{port}",
            ["BROKER_TOPIC_CREATION"] = "none",
            ["BROKER_LOG_FORMAT"] = "json",
            ["BROKER_CONFIG"] = "kafka-log.conf",
        }, new Dictionary<string, string> { ["kafka-log.conf"] = $"broker.logging {{ kafka-log-burst = {burst}, kafka-log-window = 2s }}" });
        // Every client of the node reports every reconnect attempt, dozens of lines a second: at most
        // `burst` of them per window are written, then one line counts the rest.
        await broker.WaitForLineAsync(l => l.Contains("more librdkafka lines were suppressed", StringComparison.Ordinal), ReadyTimeout);
        var lines = broker.Lines;
        Assert.All(lines, l => Assert.NotNull(JsonNode.Parse(l))); // every line is JSON, librdkafka's too
        Assert.DoesNotContain(lines, l => l.StartsWith('%')); // librdkafka's raw stderr format
        var kafka = lines.Select(l => JsonNode.Parse(l)!).Where(j => (string?)j["Category"] == "librdkafka").Select(j => (string)j["Message"]!).ToList();
        var windows = new List<int> { 0 };
        foreach (var message in kafka)
        {
            if (message.Contains("more librdkafka lines were suppressed", StringComparison.Ordinal)) windows.Add(0);
            else windows[^1]++;
        }
        Assert.All(windows, written => Assert.InRange(written, 0, burst));
        Assert.Contains(kafka, m => m.Contains("Connection refused", StringComparison.Ordinal));
    }

    /// <summary>A listener on a free loopback port (the port is then in use).</summary>
    private static TcpListener Occupy(out int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        port = ((IPEndPoint)listener.LocalEndpoint).Port;
        return listener;
    }
}
