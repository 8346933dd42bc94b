using Broker.Server;
using Broker.Server.Configuration;
using Broker.Server.Hosting;

// `--healthcheck [url]`: the container healthcheck (exit 0 when /readyz answers 200), nothing else.
if (HealthCheckCommand.IsRequested(args))
{
    Environment.ExitCode = await HealthCheckCommand.RunAsync(args);
    return;
}

var app = BrokerApp.Build(BrokerConfig.Load(), args);
await app.RunAsync();
