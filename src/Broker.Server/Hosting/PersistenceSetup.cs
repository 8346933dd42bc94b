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
    /// string: the file at <c>broker.persistence.sqlite.path</c>, its directory created and the
    /// database put in WAL mode. A store that cannot be opened does not stop the node: session
    /// operations answer <c>unavailable</c> and <paramref name="problem"/> says why.
    /// </summary>
    public static string ConnectionString(Config config, out string? problem)
    {
        problem = null;
        var provider = BrokerConfig.PersistenceProvider(config);
        var explicitConnection = config.GetString("broker.persistence.connection-string", "");
        if (provider == "postgresql")
        {
            if (string.IsNullOrWhiteSpace(explicitConnection))
                throw new ConfigurationException("broker.persistence.provider = postgresql needs broker.persistence.connection-string (env BROKER_DB_CONNECTION)");
            // The password may live in a file (a Docker secret) rather than in the connection string.
            if (config.GetString("broker.persistence.password-file", "").Trim() is { Length: > 0 } passwordFile)
                return new System.Data.Common.DbConnectionStringBuilder { ConnectionString = explicitConnection, ["Password"] = Broker.Core.Security.SecretFile.Read(passwordFile, "broker.persistence.password-file") }.ConnectionString;
            return explicitConnection;
        }
        var connection = explicitConnection;
        if (string.IsNullOrWhiteSpace(connection))
        {
            var path = Path.GetFullPath(config.GetString("broker.persistence.sqlite.path", "./data/broker.db"));
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

    /// <summary>The journal and snapshot store of the provider, with Akka.Persistence.Sql's defaults under them.</summary>
    public static AkkaConfigurationBuilder AddSessionPersistence(this AkkaConfigurationBuilder builder, Config config, string connectionString) =>
        builder
            .AddHocon(BrokerConfig.Persistence(config, connectionString), HoconAddMode.Prepend)
            .AddHocon(SqlPersistence.DefaultConfiguration, HoconAddMode.Append);
}
