using Broker.Server;
using Broker.Server.Configuration;

var app = BrokerApp.Build(BrokerConfig.Load(), args);
await app.RunAsync();
