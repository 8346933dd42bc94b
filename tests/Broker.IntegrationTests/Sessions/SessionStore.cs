using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Broker.IntegrationTests.Sessions;

/// <summary>A session store the session tests run against, and SQL to look into it.</summary>
public abstract class SessionStore : IDisposable
{
    /// <summary>HOCON overrides that point a broker at this store.</summary>
    public abstract Dictionary<string, string> Overrides { get; }

    /// <summary>Overrides that point a broker at a store of this kind that cannot be reached.</summary>
    public abstract Dictionary<string, string> UnreachableOverrides { get; }

    protected abstract DbConnection Open();

    /// <summary>Live journal rows (not marked deleted) and snapshot rows of a persistence id.</summary>
    public async Task<long> RowsAsync(string persistenceId)
    {
        await using var db = Open();
        await db.OpenAsync();
        long total = 0;
        foreach (var sql in new[]
        {
            // Akka.Persistence.Sql keeps the highest deleted row as a tombstone (deleted = true)
            // so that sequence numbers are never reused; it holds no session data.
            $"SELECT COUNT(*) FROM journal WHERE persistence_id = @p AND deleted = {False}",
            "SELECT COUNT(*) FROM snapshot WHERE persistence_id = @p",
        })
        {
            await using var cmd = db.CreateCommand();
            cmd.CommandText = sql;
            var p = cmd.CreateParameter();
            p.ParameterName = "@p";
            p.Value = persistenceId;
            cmd.Parameters.Add(p);
            total += Convert.ToInt64(await cmd.ExecuteScalarAsync());
        }
        return total;
    }

    protected abstract string False { get; }

    public virtual void Dispose()
    {
    }
}

/// <summary>A fresh SQLite file in a temporary directory (created by the broker on first start).</summary>
public sealed class SqliteStore : SessionStore
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "broker-sessions-" + Guid.NewGuid().ToString("N"));

    private string DbPath => Path.Combine(_dir, "data", "broker.db");

    public override Dictionary<string, string> Overrides => new()
    {
        ["broker.persistence.provider"] = "sqlite",
        ["broker.persistence.sqlite.path"] = DbPath,
    };

    public override Dictionary<string, string> UnreachableOverrides
    {
        get
        {
            // The "directory" of the database is a regular file: it can be neither created nor opened.
            Directory.CreateDirectory(_dir);
            var file = Path.Combine(_dir, "not-a-directory");
            File.WriteAllText(file, "");
            return new()
            {
                ["broker.persistence.provider"] = "sqlite",
                ["broker.persistence.sqlite.path"] = Path.Combine(file, "broker.db"),
            };
        }
    }

    protected override string False => "0";

    /// <summary>Turns the unreachable location of <see cref="UnreachableOverrides"/> into a usable directory.</summary>
    public void MakeReachable()
    {
        var file = Path.Combine(_dir, "not-a-directory");
        File.Delete(file);
        Directory.CreateDirectory(file);
    }

    protected override DbConnection Open() => new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false }.ToString());

    public override void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { /* best effort */ }
    }
}

/// <summary>
/// A real PostgreSQL server named by <c>BROKER_TEST_PG</c> (scripts/test.sh sets it up). Tests use
/// their own session ids, so they share the database.
/// </summary>
public sealed class PostgreSqlStore : SessionStore
{
    public const string Variable = "BROKER_TEST_PG";

    private readonly string _connection = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } c
        ? c
        : throw new InvalidOperationException(
            $"{Variable} is not set: the PostgreSQL session tests need a PostgreSQL server, e.g. " +
            $"{Variable}=\"Host=127.0.0.1;Port=5432;Username=broker;Password=broker;Database=broker_test\" (scripts/test.sh sets it up)");

    public override Dictionary<string, string> Overrides => new()
    {
        ["broker.persistence.provider"] = "postgresql",
        ["broker.persistence.connection-string"] = _connection,
    };

    public override Dictionary<string, string> UnreachableOverrides => new()
    {
        // A PostgreSQL that is not running: nothing listens on this port.
        ["broker.persistence.provider"] = "postgresql",
        ["broker.persistence.connection-string"] = new NpgsqlConnectionStringBuilder(_connection) { Port = Infrastructure.TestCluster.FreePort(), Timeout = 2 }.ToString(),
    };

    protected override string False => "false";

    protected override DbConnection Open() => new NpgsqlConnection(_connection);
}
