using System.Net.WebSockets;
using Akka.Actor;
using Akka.Hosting;
using Akka.Streams;
using Broker.Core.Connections;
using Broker.Core.Log;
using Broker.Core.Metrics;
using Broker.DevKafka;
using Broker.Protocol;
using Broker.Server.Admin;
using Broker.Server.Configuration;
using Broker.Server.Dashboard;
using Broker.Server.Hosting;

namespace Broker.Server;

/// <summary>The composition root: builds a broker node from its configuration.</summary>
public static class BrokerApp
{
    /// <summary>
    /// Binds and validates every setting of <paramref name="config"/> (<see cref="Broker.Core.Settings.SettingsException"/>
    /// at the first bad value), checks that the node's ports are free (<see cref="StartupException"/>),
    /// then composes the node. Nothing listens and no actor runs before the app is started, except
    /// the embedded Kafka-protocol log when it is enabled.
    /// </summary>
    public static WebApplication Build(LoadedConfig config, string[]? args = null)
    {
        var settings = NodeSettings.Bind(config.Config);
        var warnings = UnknownKeys.Find(config.Config);
        PortCheck.EnsureFree(PortCheck.ListenersOf(settings));
        return Build(settings, config, warnings, args ?? []);
    }

    private static WebApplication Build(NodeSettings settings, LoadedConfig config, IReadOnlyList<string> warnings, string[] args)
    {
        // Confluent.Kafka must load the librdkafka build that runs on Debian before any client exists.
        NativeLibrdkafka.EnsureLoaded();
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.AddBrokerLogging(settings.Logging);

        // Two listeners: the main port (WebSockets, /metrics, health) and the admin port (/admin/...).
        var endpoints = new BrokerEndpoints();
        builder.Services.AddSingleton(endpoints);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(settings.Http.Address, settings.Http.Port, o => endpoints.Main = o);
            k.Listen(settings.Admin.Address, settings.Admin.Port, o => endpoints.Admin = o);
        });

        // The log: embedded (in-process mock cluster) or a real Kafka cluster.
        MockKafkaCluster? embedded = null;
        var kafka = settings.Kafka;
        if (settings.EmbeddedLog.Enabled)
        {
            embedded = StartEmbeddedLog(settings);
            kafka = kafka with { BootstrapServers = embedded.BootstrapServers };
            // A factory registration, resolved first below: the container disposes it, and last.
            builder.Services.AddSingleton(_ => embedded);
        }
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(kafka);
        builder.Services.AddSingleton(settings.WebSocket);
        builder.Services.AddSingleton(settings.Admin);
        builder.Services.AddSingleton(settings.Health);
        builder.Services.AddSingleton(sp => LoggingSetup.KafkaClientLog(sp.GetRequiredService<ILoggerFactory>(), settings.Logging));
        builder.Services.AddSingleton<ITopicProvisioner>(sp => settings.TopicCreation.Mode switch
        {
            TopicCreationMode.Embedded => new EmbeddedKafkaProvisioner(embedded!),
            TopicCreationMode.DevKafka => new DevKafkaProvisioner(settings.TopicCreation.DevKafkaAdmin),
            TopicCreationMode.None => new NoTopicCreation(),
            _ => new AdminClientTopicProvisioner(kafka, sp.GetRequiredService<KafkaClientLog>()),
        });
        builder.Services.AddSingleton<KafkaLog>();
        var metrics = new BrokerMetrics();
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton(sp =>
        {
            var log = sp.GetRequiredService<KafkaLog>();
            return new FeedHub(kafka, sp.GetRequiredService<ILogger<FeedHub>>(), metrics, (topic, ct) => log.PartitionCountAsync(topic, ct),
                sp.GetRequiredService<KafkaClientLog>());
        });
        builder.Services.AddSingleton(sp => new CatchUpReader(kafka, sp.GetRequiredService<KafkaClientLog>())); // factory: disposed with the host
        builder.Services.AddSingleton<ConnectionRegistry>();
        var sessionStore = PersistenceSetup.ConnectionString(settings.Persistence, out var sessionStoreProblem);
        builder.Services.AddBrokerAkka(settings, sessionStore);
        builder.Services.AddSingleton(sp => new ReadinessProbe(kafka, settings.Health, settings.Persistence.Provider, sessionStore, sp.GetRequiredService<KafkaClientLog>()));
        builder.Services.AddSingleton(sp =>
        {
            var system = sp.GetRequiredService<ActorSystem>();
            return new NodeServices(
                settings.WebSocket,
                sp.GetRequiredService<KafkaLog>(),
                sp.GetRequiredService<FeedHub>(),
                sp.GetRequiredService<CatchUpReader>(),
                sp.GetRequiredService<IRequiredActor<TopicRegion>>().ActorRef,
                system.Materializer(),
                sp.GetRequiredService<ConnectionRegistry>(),
                sp.GetRequiredService<IRequiredActor<SessionRegion>>().ActorRef,
                system,
                settings.Sessions,
                metrics);
        });

        // Leave room after the connections' deadline for the shard hand-off and cluster leave.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.Shutdown.Deadline + settings.Shutdown.LeaveTimeout);

        var app = builder.Build();
        if (embedded is not null) app.Services.GetRequiredService<MockKafkaCluster>();
        app.UseWebSockets();
        app.MapHealthAndMetrics();
        app.Map("/ws", (Delegate)HandleWebSocket);
        if (settings.Http.Dashboard) app.MapDashboard();
        app.MapAdminApi(settings.Admin);

        var log = app.Logger;
        StartupLog.Configuration(log, config, warnings);
        StartupLog.Log(log, kafka, embedded is not null);
        StartupLog.SessionStore(log, PersistenceSetup.Describe(settings.Persistence, sessionStore), sessionStoreProblem);
        var lifetime = app.Lifetime;
        lifetime.ApplicationStarted.Register(() =>
            StartupLog.ReadyWhenUp(app.Environment.ApplicationName, app.Services.GetRequiredService<ActorSystem>(), endpoints, settings.Http.Dashboard));
        lifetime.ApplicationStopping.Register(() =>
        {
            // SIGTERM: stop accepting, close live connections with 1001 so clients reconnect elsewhere.
            var registry = app.Services.GetRequiredService<ConnectionRegistry>();
            log.LogInformation("Shutting down: closing {Count} connections with 1001", registry.Count);
            registry.DrainAsync(CloseCodes.GoingAway, "server shutting down", settings.Shutdown.Deadline).Wait();
        });
        return app;
    }

    /// <summary>The embedded log on its port; a port taken since the check is reported like the check does.</summary>
    private static MockKafkaCluster StartEmbeddedLog(NodeSettings settings)
    {
        try
        {
            return MockKafkaCluster.Start(settings.EmbeddedLog.Host, settings.EmbeddedLog.Port, autoCreatePartitions: settings.Kafka.Partitions);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            var listener = PortCheck.ListenersOf(settings).First(l => l.Key == "broker.kafka.embedded.port");
            throw new StartupException(PortCheck.Message(listener, e.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse ? "the port is in use" : e.Message), e);
        }
    }

    private static async Task HandleWebSocket(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            await context.Response.WriteAsync("WebSocket endpoint: connect with a WebSocket client\n");
            return;
        }
        var node = context.RequestServices.GetRequiredService<NodeServices>();
        if (node.Registry.IsDraining)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }
        var client = context.Request.Query["client"].ToString();
        if (client.Length > 0 && !TopicName.IsValidIdentity(client))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("client must be 1-128 characters of A-Z a-z 0-9 . _ -\n");
            return;
        }
        var session = context.Request.Query["session"];
        if (session.Count > 0 && (session.Count > 1 || !TopicName.IsValidIdentity(session.ToString())))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("session must be 1-128 characters of A-Z a-z 0-9 . _ -\n");
            return;
        }
        var settings = node.Settings;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            KeepAliveInterval = settings.KeepAliveInterval,
            KeepAliveTimeout = settings.IdleTimeout,
        });
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger<Connection>();
        await new Connection(socket, node, logger, client.Length > 0 ? client : null, session.Count > 0 ? session.ToString() : null).RunAsync();
    }

    /// <summary>The address Kestrel actually bound (useful with port 0).</summary>
    public static string HttpAddress(this WebApplication app) =>
        BrokerEndpoints.Url(app.Services.GetRequiredService<BrokerEndpoints>().Main);

    /// <summary>The address of the admin API (useful with port 0).</summary>
    public static string AdminAddress(this WebApplication app) =>
        BrokerEndpoints.Url(app.Services.GetRequiredService<BrokerEndpoints>().Admin);
}
