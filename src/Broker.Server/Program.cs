using Broker.Server.Hosting;

// `--healthcheck [url]`: the container healthcheck (exit 0 when /readyz answers 200; without a URL the
// node of this configuration), nothing else.
if (HealthCheckCommand.IsRequested(args)) return await HealthCheckCommand.RunAsync(args, Environment.GetEnvironmentVariable);

return await BrokerMain.RunAsync(args, Environment.GetEnvironmentVariable);
