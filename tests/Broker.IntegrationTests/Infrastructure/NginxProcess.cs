using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// Debian's nginx as a child process of the test (<c>nginx -p prefix -c conf -g 'daemon off;'</c>)
/// with a temporary prefix for its pid, logs and temp files. The configuration is the production
/// <c>deploy/nginx.conf</c> with only the upstream servers, the listen address and the file paths
/// rewritten. Disposing kills the master and its workers, nothing else.
/// </summary>
public sealed partial class NginxProcess : IAsyncDisposable
{
    public const string NginxPath = "/usr/sbin/nginx";

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private volatile bool _disposed;

    private NginxProcess(Process process, string prefix, int port)
    {
        _process = process;
        Prefix = prefix;
        Port = port;
    }

    public string Prefix { get; }
    public int Port { get; }
    public Uri WsUri => new($"ws://127.0.0.1:{Port}/ws");
    public string HttpAddress => $"http://127.0.0.1:{Port}";

    public string Output
    {
        get
        {
            var errorLog = Path.Combine(Prefix, "logs", "error.log");
            lock (_output) return _output + (!_disposed && File.Exists(errorLog) ? File.ReadAllText(errorLog) : "");
        }
    }

    [GeneratedRegex(@"^[ \t]*server broker\d+:8080[^\n]*\n", RegexOptions.Multiline)]
    private static partial Regex UpstreamServer();

    [GeneratedRegex(@"^([ \t]*)listen 80;", RegexOptions.Multiline)]
    private static partial Regex Listen();

    /// <summary>The production configuration adapted to loopback: upstream = <paramref name="upstreamPorts"/>.</summary>
    public static string Adapt(string productionConf, string prefix, int listenPort, IEnumerable<int> upstreamPorts)
    {
        var servers = UpstreamServer().Matches(productionConf);
        if (servers.Count == 0) throw new InvalidOperationException("no 'server brokerN:8080' lines in the nginx configuration");
        var indent = servers[0].Value[..(servers[0].Value.Length - servers[0].Value.TrimStart().Length)];
        var replacement = string.Concat(upstreamPorts.Select(p => $"{indent}server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n"));
        var conf = UpstreamServer().Replace(productionConf, m => m.Index == servers[0].Index ? replacement : "");
        if (!Listen().IsMatch(conf)) throw new InvalidOperationException("no 'listen 80;' in the nginx configuration");
        conf = Listen().Replace(conf, $"$1listen 127.0.0.1:{listenPort};", 1);
        var temp = Path.Combine(prefix, "temp");
        var paths = $"""
              access_log {prefix}/logs/access.log;
              client_body_temp_path {temp}/body;
              proxy_temp_path {temp}/proxy;
              fastcgi_temp_path {temp}/fastcgi;
              uwsgi_temp_path {temp}/uwsgi;
              scgi_temp_path {temp}/scgi;

            """;
        var http = conf.IndexOf("http {", StringComparison.Ordinal);
        if (http < 0) throw new InvalidOperationException("no 'http {' block in the nginx configuration");
        conf = conf.Insert(conf.IndexOf('\n', http) + 1, paths);
        return $"pid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log info;\n" + conf;
    }

    /// <summary>Starts nginx with the adapted configuration and waits (bounded) until it accepts connections.</summary>
    public static async Task<NginxProcess> StartAsync(string productionConfPath, int listenPort, IEnumerable<int> upstreamPorts, TimeSpan timeout)
    {
        if (!File.Exists(NginxPath)) throw new InvalidOperationException($"{NginxPath} is missing: install Debian's nginx (scripts/test.sh does)");
        var prefix = Path.Combine(Path.GetTempPath(), $"broker-nginx-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(prefix, "logs"));
        Directory.CreateDirectory(Path.Combine(prefix, "temp"));
        var confPath = Path.Combine(prefix, "nginx.conf");
        await File.WriteAllTextAsync(confPath, Adapt(await File.ReadAllTextAsync(productionConfPath), prefix, listenPort, upstreamPorts));

        var psi = new ProcessStartInfo(NginxPath, ["-p", prefix + "/", "-e", Path.Combine(prefix, "logs", "error.log"), "-c", confPath, "-g", "daemon off;"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = new Process { StartInfo = psi };
        var nginx = new NginxProcess(process, prefix, listenPort);
        process.OutputDataReceived += (_, e) => nginx.Append(e.Data);
        process.ErrorDataReceived += (_, e) => nginx.Append(e.Data);
        if (!process.Start()) throw new InvalidOperationException("nginx did not start");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync();
                throw new InvalidOperationException($"nginx exited with {process.ExitCode}\n{nginx.Output}");
            }
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, listenPort);
                return nginx;
            }
            catch (SocketException)
            {
                // not listening yet
            }
            if (DateTime.UtcNow > deadline)
            {
                await nginx.DisposeAsync();
                throw new TimeoutException($"nginx did not listen on {listenPort} within {timeout}");
            }
            await Task.Delay(100);
        }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
        foreach (var log in new[] { "error.log", "access.log" })
        {
            var file = Path.Combine(Prefix, "logs", log);
            if (File.Exists(file)) Append(await File.ReadAllTextAsync(file));
        }
        _disposed = true;
        try { Directory.Delete(Prefix, recursive: true); } catch (IOException) { /* best effort */ } catch (UnauthorizedAccessException) { /* best effort */ }
    }
}
