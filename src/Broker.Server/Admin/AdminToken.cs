using Akka.Configuration;

namespace Broker.Server.Admin;

/// <summary>
/// The admin API's bearer token: <c>broker.admin.token</c>, or the contents of the file
/// <c>broker.admin.token-file</c> names (a Docker or Kubernetes secret), so that the token need not
/// sit in the environment or a config file.
/// </summary>
public static class AdminToken
{
    public static string From(Config config)
    {
        var token = config.GetString("broker.admin.token", "");
        var file = config.GetString("broker.admin.token-file", "").Trim();
        if (token.Length > 0 || file.Length == 0) return token;
        try
        {
            var fromFile = File.ReadAllText(Path.GetFullPath(file)).Trim();
            if (fromFile.Length == 0) throw new ConfigurationException($"broker.admin.token-file: '{Path.GetFullPath(file)}' is empty (expected the admin API's token)");
            return fromFile;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"broker.admin.token-file (env BROKER_ADMIN_TOKEN_FILE): cannot read '{Path.GetFullPath(file)}': {e.Message}");
        }
    }
}
