using Broker.Server.Hosting;

return await BrokerMain.RunAsync(args, Environment.GetEnvironmentVariable);
