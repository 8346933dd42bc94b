using Broker.Core.Settings;
using Broker.Server.Configuration;

namespace Broker.Server.Hosting;

/// <summary>
/// The process: loads and validates the configuration, builds the node and runs it until SIGTERM.
/// A problem the operator can fix — a bad value, an unreadable configuration file, a port in use —
/// is reported in one line on stderr and ends the process with exit code 2 before Akka or Kestrel
/// start; the stack trace only with <c>--verbose</c> or <c>BROKER_VERBOSE=1</c>.
/// </summary>
public static class BrokerMain
{
    /// <summary>The command-line flag that adds stack traces to startup errors.</summary>
    public const string VerboseFlag = "--verbose";

    /// <summary>The environment variable that does the same.</summary>
    public const string VerboseVariable = "BROKER_VERBOSE";

    public static async Task<int> RunAsync(string[] args, Func<string, string?> environment)
    {
        var verbose = args.Contains(VerboseFlag) || environment(VerboseVariable) is "1" or "true" or "on" or "yes";
        args = [.. args.Where(a => a != VerboseFlag)];
        LoadedConfig? config = null;
        WebApplication app;
        try
        {
            config = BrokerConfig.Load(environment: environment);
            app = BrokerApp.Build(config, args);
        }
        catch (SettingsException e)
        {
            return Fail(config?.Describe(e) ?? e.Message, e, verbose);
        }
        catch (StartupException e)
        {
            return Fail(e.Message, e, verbose);
        }
        await using (app)
        {
            try
            {
                await app.RunAsync();
            }
            catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                // A port taken between the check and Kestrel's bind.
                return Fail($"cannot listen: {e.Message} (broker.http.port / broker.admin.port; 0 = any free port)", e, verbose);
            }
        }
        return 0;
    }

    private static int Fail(string message, Exception e, bool verbose)
    {
        Console.Error.WriteLine($"broker: {message}");
        if (verbose) Console.Error.WriteLine(e);
        return StartupException.ExitCode;
    }
}
