using System.Diagnostics;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.Soak.Cluster;

/// <summary>
/// The nodes' session store and its fault. SQLite: one file shared by the three node processes (as
/// <c>scripts/cluster.sh</c> does); no fault. PostgreSQL: the connection string given, and either
/// the real thing stopped and started with <c>pg_ctlcluster</c> ("stop": everyone using that
/// PostgreSQL sees it) or the soak's own TCP proxy cut and restored ("cut": only the soak's brokers
/// see it; what the integration test uses).
/// </summary>
public sealed class Database : IAsyncDisposable
{
    private readonly TcpProxy? _proxy;
    private readonly string[]? _pgCtl;
    private bool _stopped;

    private Database(string provider, string connection, string description, TcpProxy? proxy, string[]? pgCtl)
    {
        Provider = provider;
        Connection = connection;
        Description = description;
        _proxy = proxy;
        _pgCtl = pgCtl;
    }

    /// <summary><c>sqlite</c> or <c>postgresql</c>.</summary>
    public string Provider { get; }

    /// <summary>The connection string (or SQLite path) the nodes get.</summary>
    public string Connection { get; }

    public string Description { get; }

    /// <summary>The fault this store can take: <c>db-stop</c>, <c>db-cut</c> or null.</summary>
    public string? FaultKind => _pgCtl is not null ? "db-stop" : _proxy is not null ? "db-cut" : null;

    public static Database Sqlite(string path) => new("sqlite", path, $"SQLite ({path}, shared by the nodes)", null, null);

    /// <param name="fault">"stop" (pg_ctlcluster), "cut" (a TCP proxy) or "none".</param>
    /// <param name="pgCtl">The pg_ctlcluster command and cluster, e.g. "pg_ctlcluster 15 main".</param>
    public static Database Postgres(string connection, string fault, string pgCtl)
    {
        var parts = ConnectionParts(connection);
        var host = parts.GetValueOrDefault("host") ?? parts.GetValueOrDefault("server") ?? "127.0.0.1";
        var port = int.TryParse(parts.GetValueOrDefault("port"), out var p) ? p : 5432;
        switch (fault)
        {
            case "cut":
                var proxy = new TcpProxy(host, port);
                var through = WithHostPort(connection, "127.0.0.1", proxy.Port);
                return new Database("postgresql", through, $"PostgreSQL {host}:{port} through the soak's TCP proxy (fault: cut)", proxy, null);
            case "stop":
                return new Database("postgresql", connection, $"PostgreSQL {host}:{port} (fault: `{pgCtl} stop` / `start`)", null,
                    pgCtl.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            default:
                return new Database("postgresql", connection, $"PostgreSQL {host}:{port} (no database fault)", null, null);
        }
    }

    /// <summary>"host:port" of a PostgreSQL connection string (the server, whatever the database or user).</summary>
    public static string Server(string connection)
    {
        var parts = ConnectionParts(connection);
        var host = parts.GetValueOrDefault("host") ?? parts.GetValueOrDefault("server") ?? "127.0.0.1";
        return $"{(host == "localhost" ? "127.0.0.1" : host)}:{parts.GetValueOrDefault("port") ?? "5432"}";
    }

    /// <summary>
    /// Refuses (<see cref="ArgumentException"/>) a "stop" fault that could stop another PostgreSQL
    /// than the one the nodes use: <paramref name="pgCtl"/> must be <c>pg_ctlcluster VERSION CLUSTER</c>
    /// and that cluster (per <c>pg_lsclusters</c>) must listen on the connection's loopback port.
    /// </summary>
    public static void CheckStoppable(string connection, string pgCtl)
    {
        var parts = ConnectionParts(connection);
        var host = parts.GetValueOrDefault("host") ?? parts.GetValueOrDefault("server") ?? "127.0.0.1";
        var port = parts.GetValueOrDefault("port") ?? "5432";
        if (host is not ("127.0.0.1" or "localhost" or "::1"))
            throw new ArgumentException($"--db-fault stop needs a PostgreSQL on this machine (the connection names {host})");
        var words = pgCtl.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words is not ["pg_ctlcluster", var version, var cluster])
            throw new ArgumentException($"--pg-ctl is \"pg_ctlcluster VERSION CLUSTER\", not \"{pgCtl}\"");
        string listing;
        try
        {
            using var ls = Process.Start(new ProcessStartInfo("pg_lsclusters", ["--no-header", version, cluster]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            listing = ls.StandardOutput.ReadToEnd();
            ls.WaitForExit(10_000);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ArgumentException($"--db-fault stop: pg_lsclusters did not run ({e.Message})");
        }
        var columns = listing.Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        if (columns.Length < 3 || columns[2] != port)
            throw new ArgumentException($"--db-fault stop: cluster {version}/{cluster} does not listen on port {port} of the connection (pg_lsclusters: {listing.Trim()})");
    }

    /// <summary>The environment that points a node at this store.</summary>
    public IEnumerable<KeyValuePair<string, string>> NodeEnvironment()
    {
        if (Provider == "sqlite")
        {
            yield return new("BROKER_DB_PROVIDER", "sqlite");
            yield return new("BROKER_DB_PATH", Connection);
        }
        else
        {
            yield return new("BROKER_DB_PROVIDER", "postgresql");
            yield return new("BROKER_DB_CONNECTION", Connection);
        }
    }

    /// <summary>The fault: the database goes away.</summary>
    public async Task BreakAsync(CancellationToken ct)
    {
        if (_proxy is not null) _proxy.Break();
        else if (_pgCtl is not null)
        {
            _stopped = true;
            Console.Error.WriteLine($"soak: stopping PostgreSQL ({string.Join(' ', _pgCtl)} stop); if this process dies before it starts it again: {string.Join(' ', _pgCtl)} start");
            await RunAsync([.. _pgCtl[1..], "stop"], ct);
        }
    }

    /// <summary>The database is back.</summary>
    public async Task RepairAsync(CancellationToken ct)
    {
        if (_proxy is not null) _proxy.Restore();
        else if (_pgCtl is not null)
        {
            await RunAsync([.. _pgCtl[1..], "start"], ct);
            _stopped = false;
        }
    }

    /// <summary>
    /// Runs pg_ctlcluster to its end even when the run is cancelled meanwhile: a <c>start</c> issued
    /// while a cancelled <c>stop</c> is still stopping the server could fail and leave it stopped.
    /// </summary>
    private async Task RunAsync(string[] args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(_pgCtl![0], args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"{_pgCtl[0]} did not start");
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0) throw new InvalidOperationException($"{_pgCtl[0]} {string.Join(' ', args)} exited with {process.ExitCode}: {await stderr}");
    }

    private static Dictionary<string, string> ConnectionParts(string connection) =>
        connection.Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(kv => kv.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .ToDictionary(kv => kv[0].Trim().ToLowerInvariant(), kv => kv[1].Trim());

    private static string WithHostPort(string connection, string host, int port)
    {
        var kept = connection.Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Where(kv => kv.Split('=', 2)[0].Trim().ToLowerInvariant() is not ("host" or "server" or "port"));
        return string.Join(';', kept.Prepend($"Port={port}").Prepend($"Host={host}"));
    }

    /// <summary>Never leaves a stopped PostgreSQL behind.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopped)
        {
            try { await RepairAsync(CancellationToken.None); }
            catch (Exception e) { Console.Error.WriteLine($"soak: could not start PostgreSQL again: {e.Message}"); }
        }
        _proxy?.Dispose();
    }
}
