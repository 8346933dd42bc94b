using System.Net.Sockets;
using Akka.Actor;
using Akka.Hosting;
using Broker.Core.Connections;
using Broker.Core.Fanout;
using Broker.Core.Log;
using Broker.Core.Metrics;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.DevKafka;
using Broker.Protocol;
using Broker.Server.Admin;
using Broker.Server.Configuration;
using Broker.Server.Dashboard;
using Broker.Server.Hosting;
using Broker.Server.Logging;
using Broker.Server.Metrics;
using Broker.Server.Publish;
using Broker.Server.Security;
using Broker.Server.WebSockets;

namespace Broker.Server;

/// <summary>The composition root: builds a broker node from its configuration.</summary>
public static class BrokerApp
{
    /// <summary>
    /// Binds and validates every setting of <paramref name="config"/> (<see cref="Broker.Core.Settings.SettingsException"/>
    /// at the first bad value), refuses an unprotected exposure and checks that the node's ports
    /// are free and its TLS certificates load (<see cref="StartupException"/>), then composes the
    /// node. Nothing listens and no actor runs before the app is started, except the embedded
    /// Kafka-protocol log when it is enabled.
    /// </summary>
    public static WebApplication Build(LoadedConfig config, string[]? args = null)
    {
        var settings = NodeSettings.Bind(config.Config);
        var warnings = UnknownKeys.Find(config.Config);
        var exposure = Exposure.Check(settings.Http, settings.Admin, settings.Security);
        var tls = TlsSetup.Load(settings.Http.Tls);
        var clusterTls = ClusterTls.Load(settings.Cluster.Tls);
        PortCheck.EnsureFree(PortCheck.ListenersOf(settings));
        return Build(settings, exposure, tls, clusterTls, config, warnings, args ?? []);
    }

    private static WebApplication Build(NodeSettings settings, Exposure exposure, TlsSetup tls, ClusterTls clusterTls, LoadedConfig config,
        IReadOnlyList<string> warnings, string[] args)
    {
        // Confluent.Kafka must load the librdkafka build that runs on Debian before any client exists.
        NativeLibrdkafka.EnsureLoaded();
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.AddBrokerLogging(settings.Logging);
        builder.AddLogControl(settings.Logging);

        // Two listeners: the main port (WebSockets, /metrics, health) and the admin port (/admin/...).
        var endpoints = new BrokerEndpoints { MainTls = tls.Enabled };
        builder.Services.AddSingleton(endpoints);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(settings.Http.Address, settings.Http.Port, o => endpoints.Main = tls.Apply(o.Tag(Listener.Public)));
            k.Listen(settings.Admin.Address, settings.Admin.Port, o => endpoints.Admin = o.Tag(Listener.Admin));
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
        builder.AddBrokerSecurity(settings.Security, exposure, kafka);
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
        builder.AddBrokerMetrics(settings.Metrics);
        builder.Services.AddSingleton(sp =>
        {
            var log = sp.GetRequiredService<KafkaLog>();
            return new FeedHub(kafka, sp.GetRequiredService<ILogger<FeedHub>>(), sp.GetRequiredService<BrokerMetrics>(), (topic, ct) => log.PartitionCountAsync(topic, ct),
                settings.RecentHistory, sp.GetRequiredService<KafkaClientLog>(), settings.OffsetIndex);
        });
        builder.Services.AddSingleton(sp => new CatchUpReader(kafka, sp.GetRequiredService<KafkaClientLog>())); // factory: disposed with the host
        builder.Services.AddSingleton<ConnectionRegistry>();
        if (settings.OffsetIndex.Enabled)
            builder.Services.AddSingleton(sp => new OffsetIndexing(sp.GetRequiredService<FeedHub>(), sp.GetRequiredService<KafkaLog>(), sp.GetRequiredService<CatchUpReader>(),
                sp.GetRequiredService<ILogger<OffsetIndexing>>())); // factory: disposed with the host
        var sessionStore = PersistenceSetup.ConnectionString(settings.Persistence, out var sessionStoreProblem);
        builder.Services.AddBrokerAkka(settings, clusterTls, sessionStore);
        builder.Services.AddSingleton(sp => new ReadinessProbe(kafka, settings.Health, settings.Persistence.Provider, sessionStore, sp.GetRequiredService<KafkaClientLog>()));
        builder.Services.AddSingleton(sp => new Publisher(
            sp.GetRequiredService<KafkaLog>(), sp.GetRequiredService<IRequiredActor<TopicRegion>>().ActorRef, settings.WebSocket.RequestTimeout, sp.GetRequiredService<BrokerMetrics>()));
        builder.Services.AddSingleton(sp => new NodeServices(
            settings.WebSocket,
            sp.GetRequiredService<KafkaLog>(),
            sp.GetRequiredService<FeedHub>(),
            sp.GetRequiredService<CatchUpReader>(),
            sp.GetRequiredService<Publisher>(),
            sp.GetRequiredService<ConnectionRegistry>(),
            sp.GetRequiredService<BrokerMetrics>(),
            sp.GetRequiredService<IRequiredActor<SessionRegion>>().ActorRef,
            sp.GetRequiredService<ActorSystem>(),
            settings.Sessions));

        // Leave room after the connections' deadline for the shard hand-off and cluster leave.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.Shutdown.Deadline + settings.Shutdown.LeaveTimeout);

        var app = builder.Build();
        if (embedded is not null) app.Services.GetRequiredService<MockKafkaCluster>();
        // Before the first connection: every shared feed that starts is backfilled.
        var indexing = app.Services.GetService<OffsetIndexing>();
        app.UseBrokerSecurity();
        app.UsePublicSurface(settings.Http.InternalEndpoints);
        app.UseWebSockets();
        app.MapHealth();
        app.MapBrokerMetrics();
        // The endpoint's services are the application's singletons, resolved once: through
        // context.RequestServices every connection would hold a request scope for its lifetime.
        var webSockets = new WebSocketServices(app.Services);
        app.Map("/ws", (HttpContext context) => HandleWebSocket(context, webSockets));
        app.MapHttpPublish(settings.HttpPublish);
        if (settings.Http.Dashboard) app.MapDashboard();
        app.MapAdminApi(settings.Admin, AdminGuard.From(settings.Admin, settings.Cluster, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Broker.Admin")));

        var log = app.Logger;
        StartupLog.Configuration(log, config, warnings);
        StartupLog.Log(log, kafka, embedded is not null);
        StartupLog.SessionStore(log, PersistenceSetup.Describe(settings.Persistence, sessionStore), sessionStoreProblem);
        var lifetime = app.Lifetime;
        if (indexing is not null) lifetime.ApplicationStarted.Register(indexing.Start);
        lifetime.ApplicationStarted.Register(() =>
            StartupLog.ReadyWhenUp(app.Environment.ApplicationName, app.Services.GetRequiredService<ActorSystem>(), endpoints, settings.Http.Dashboard, settings.Cluster));
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
            return MockKafkaCluster.Start(settings.EmbeddedLog.Host, settings.EmbeddedLog.Port, brokers: 1, settings.Kafka.PartitionsOfKafkaTopic);
        }
        catch (SocketException e)
        {
            var listener = PortCheck.ListenersOf(settings).First(l => l.Key == "broker.kafka.embedded.port");
            throw new StartupException(PortCheck.Message(listener, e.SocketErrorCode == SocketError.AddressAlreadyInUse ? "the port is in use" : e.Message), e);
        }
    }

    /// <summary>What every WebSocket connection of the node uses: singletons, resolved at the first connection (the actor system is up by then).</summary>
    private sealed class WebSocketServices(IServiceProvider services)
    {
        public NodeServices Node => field ??= services.GetRequiredService<NodeServices>();
        public WebSocketGate Gate => field ??= services.GetRequiredService<WebSocketGate>();
        public ILogger<Connection> Logger => field ??= services.GetRequiredService<ILogger<Connection>>();
    }

    private static async Task HandleWebSocket(HttpContext context, WebSocketServices services)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            await context.Response.WriteAsync("WebSocket endpoint: connect with a WebSocket client\n");
            return;
        }
        var node = services.Node;
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
        var security = await services.Gate.AdmitAsync(context, session.Count > 0);
        if (security is null) return;
        using var _ = security;
        var accepted = await WebSocketAcceptor.AcceptAsync(context, node.Settings);
        if (accepted is null) return;
        using var socket = accepted.Socket;
        var options = new ConnectionOptions(client.Length > 0 ? client : null, session.Count > 0 ? session.ToString() : null, context.Request.Query["batch"] == "1", security);
        // Aborting the connection aborts the transport too: a write blocked on a peer that does not read fails only when it goes.
        await new Connection(socket, accepted.Coalescing, node, services.Logger, options, context.Abort).RunAsync();
    }

    /// <summary>The address Kestrel actually bound (useful with port 0).</summary>
    public static string HttpAddress(this WebApplication app)
    {
        var endpoints = app.Services.GetRequiredService<BrokerEndpoints>();
        var url = BrokerEndpoints.Url(endpoints.Main);
        return endpoints.MainTls ? "https" + url["http".Length..] : url;
    }

    /// <summary>The address of the admin API (useful with port 0).</summary>
    public static string AdminAddress(this WebApplication app) =>
        BrokerEndpoints.Url(app.Services.GetRequiredService<BrokerEndpoints>().Admin);
}
