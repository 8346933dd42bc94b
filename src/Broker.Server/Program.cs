using Broker.Server;
using Broker.Server.Configuration;
using Broker.Server.Hosting;

// `--healthcheck [url]`: the container healthcheck (exit 0 when /readyz answers 200), nothing else.
if (HealthCheckCommand.IsRequested(args))
{
    Environment.ExitCode = await HealthCheckCommand.RunAsync(args);
    return;
}

WebApplication app;
try
{
    app = BrokerApp.Build(BrokerConfig.Load(), args);
}
catch (Akka.Configuration.ConfigurationException e)
{
    // A setting the operator must fix (e.g. an unprotected exposure): one line, exit code 2.
    Console.Error.WriteLine($"broker: {e.Message}");
    Environment.ExitCode = 2;
    return;
}
await app.RunAsync();
