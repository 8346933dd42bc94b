using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Sql;
using Broker.Server.Configuration;
using Microsoft.Data.Sqlite;

namespace Broker.Server.Hosting;

/// <summary>The session store (Akka.Persistence.Sql through HOCON): SQLite by default, PostgreSQL when configured.</summary>
public static class PersistenceSetup
{
    /// <summary>
    /// The connection string of the configured provider. For SQLite without an explicit connection
    /// string: the file at <see cref="PersistenceSettings.SqlitePath"/>, its directory created and the
    /// database put in WAL mode. A store that cannot be opened does not stop the node: session
    /// operations answer <c>unavailable</c> and <paramref name="problem"/> says why.
    /// </summary>
    public static string ConnectionString(PersistenceSettings settings, out string? problem)
    {
        problem = null;
        if (settings.Provider == PersistenceSettings.PostgreSql) return settings.ConnectionString;
        var connection = settings.ConnectionString;
        if (connection.Length == 0)
        {
            var path = settings.SqlitePath;
            connection = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, DefaultTimeout = 30 }.ToString();
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problem = $"cannot create the directory of {path}: {e.Message}";
                return connection;
            }
        }
        try
        {
            // WAL: readers do not block the writer; the mode is stored in the database file.
            using var db = new SqliteConnection(connection);
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode=WAL;";
            cmd.ExecuteNonQuery();
        }
        catch (SqliteException e)
        {
            problem = $"cannot open the SQLite session store: {e.Message}";
        }
        return connection;
    }

    /// <summary>
    /// Where the store is, for the startup log: the SQLite file, or the PostgreSQL host and database
    /// (never the password).
    /// </summary>
    public static string Describe(PersistenceSettings settings, string connectionString)
    {
        if (settings.Provider == PersistenceSettings.PostgreSql)
        {
            try
            {
                var b = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
                return $"postgresql {b.Host}:{b.Port}/{b.Database}";
            }
            catch (ArgumentException)
            {
                return "postgresql (the connection string does not parse)";
            }
        }
        try
        {
            return "sqlite " + Path.GetFullPath(new SqliteConnectionStringBuilder(connectionString).DataSource);
        }
        catch (ArgumentException)
        {
            return "sqlite (the connection string does not parse)";
        }
    }

    /// <summary>The journal and snapshot store of the provider, with Akka.Persistence.Sql's defaults under them.</summary>
    public static AkkaConfigurationBuilder AddSessionPersistence(this AkkaConfigurationBuilder builder, PersistenceSettings settings, string connectionString) =>
        builder
            .AddHocon(PluginConfig(settings, connectionString), HoconAddMode.Prepend)
            .AddHocon(SqlPersistence.DefaultConfiguration, HoconAddMode.Append);

    /// <summary>
    /// The Akka.Persistence.Sql configuration of the provider: <c>hocon/persistence-&lt;provider&gt;.conf</c>
    /// (next to the binary) with the connection string set.
    /// </summary>
    private static Config PluginConfig(PersistenceSettings settings, string connectionString)
    {
        var file = Path.Combine(AppContext.BaseDirectory, "hocon", $"persistence-{settings.Provider}.conf");
        var plugin = ConfigurationFactory.ParseString(File.ReadAllText(file));
        var conn = BrokerConfig.Quote(connectionString);
        return ConfigurationFactory.ParseString($"""
            akka.persistence.journal.sql.connection-string = {conn}
            akka.persistence.snapshot-store.sql.connection-string = {conn}
            akka.persistence.query.journal.sql.connection-string = {conn}
            """).WithFallback(plugin);
    }
}
