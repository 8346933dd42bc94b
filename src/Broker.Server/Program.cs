using Broker.Server.Hosting;

// `--healthcheck [url]`: the container healthcheck (exit 0 when /readyz answers 200), nothing else.
if (HealthCheckCommand.IsRequested(args)) return await HealthCheckCommand.RunAsync(args);

return await BrokerMain.RunAsync(args, Environment.GetEnvironmentVariable);
