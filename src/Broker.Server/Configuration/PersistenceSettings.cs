using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>The session store (HOCON <c>broker.persistence</c>).</summary>
public sealed record PersistenceSettings
{
    /// <summary>The SQLite provider (a file).</summary>
    public const string Sqlite = "sqlite";

    /// <summary>The PostgreSQL provider.</summary>
    public const string PostgreSql = "postgresql";

    /// <summary><see cref="Sqlite"/> or <see cref="PostgreSql"/>; hocon/persistence-&lt;provider&gt;.conf holds its plugin settings.</summary>
    public required string Provider { get; init; }

    /// <summary>
    /// The ADO.NET connection string (required for PostgreSQL, with the password of
    /// <c>broker.persistence.password-file</c> when that is set; empty with SQLite: <see cref="SqlitePath"/>).
    /// </summary>
    public required string ConnectionString { get; init; }

    /// <summary>The SQLite file, absolute (a relative setting is resolved against the directory the broker was started from).</summary>
    public required string SqlitePath { get; init; }

    /// <summary>Binds and validates <c>broker.persistence</c>; reads the password file when one is set.</summary>
    public static PersistenceSettings Bind(SettingsReader r)
    {
        var provider = r.Choice("broker.persistence.provider", [(Sqlite, Sqlite), (PostgreSql, PostgreSql), ("postgres", PostgreSql)], "sqlite or postgresql");
        const string connectionKey = "broker.persistence.connection-string";
        var connection = r.String(connectionKey).Trim();
        if (provider == PostgreSql && connection.Length == 0)
            throw r.Invalid(connectionKey, connection, "a PostgreSQL connection string with broker.persistence.provider = postgresql (env BROKER_DB_CONNECTION), e.g. Host=db;Username=broker;Database=broker");
        // The password may live in a file (a Docker secret) rather than in the connection string.
        const string passwordKey = "broker.persistence.password-file";
        var passwordFile = r.String(passwordKey).Trim();
        var password = provider == PostgreSql && passwordFile.Length > 0 ? r.ReadSecret(passwordKey, passwordFile, "the session store's database password") : null;
        if (connection.Length > 0)
        {
            try
            {
                var builder = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connection };
                if (password is not null)
                {
                    builder["Password"] = password;
                    connection = builder.ConnectionString;
                }
            }
            catch (ArgumentException)
            {
                throw r.Invalid(connectionKey, "…", "an ADO.NET connection string of key=value pairs separated by ;, e.g. Host=db;Username=broker;Database=broker");
            }
        }
        return new PersistenceSettings
        {
            Provider = provider,
            ConnectionString = connection,
            SqlitePath = r.FilePath("broker.persistence.sqlite.path"),
        };
    }
}
