using Broker.Core.Replay;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using System.Net;
using System.Net.WebSockets;
using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Broker.Core.Connections;
using Broker.Core.Log;
using Broker.Core.Metrics;
using Broker.Core.Settings;
using Broker.DevKafka;
using Broker.Protocol;
using Broker.Server.Admin;
using Broker.Server.Configuration;
using Broker.Server.Dashboard;
using Broker.Server.Hosting;
using Broker.Server.WebSockets;
using Broker.Core.Publish;
using Broker.Server.Logging;
using Broker.Server.Metrics;
using Broker.Server.Publish;
using Broker.Server.Security;

namespace Broker.Server;

/// <summary>The composition root: builds a broker node from its configuration.</summary>
public static class BrokerApp
{
    public static WebApplication Build(Config config, string[]? args = null)
    {
        // Confluent.Kafka must load the librdkafka build that runs on Debian before any client exists.
        NativeLibrdkafka.EnsureLoaded();
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        // broker.logging.format: text (one line per entry) or json (one JSON object per line, for log shippers).
        switch (config.GetString("broker.logging.format", "text").Trim().ToLowerInvariant())
        {
            case "json":
                builder.Logging.ClearProviders();
                builder.Logging.AddJsonConsole(o =>
                {
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                    o.UseUtcTimestamp = true;
                });
                break;
            case "text":
                builder.Logging.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.TimestampFormat = "HH:mm:ss ";
                });
                break;
            case var other:
                throw new ConfigurationException($"broker.logging.format: unknown format '{other}' (text or json)");
        }
        builder.AddLogControl(config);
        // Two listeners: the main port (WebSockets, /metrics, health) and the admin port (/admin/...).
        var endpoints = new BrokerEndpoints();
        builder.Services.AddSingleton(endpoints);
        var tls = TlsSetup.FromConfig(config);
        endpoints.MainTls = tls.Enabled;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(ResolveHost(config.GetString("broker.http.host")), config.GetInt("broker.http.port"), o => endpoints.Main = tls.Apply(o.Tag(Listener.Public)));
            k.Listen(ResolveHost(config.GetString("broker.admin.host")), config.GetInt("broker.admin.port"), o => endpoints.Admin = o.Tag(Listener.Admin));
        });

        // The log: embedded (in-process mock cluster) or a real Kafka cluster.
        MockKafkaCluster? embedded = null;
        var bootstrap = config.GetString("broker.kafka.bootstrap-servers", "");
        if (BrokerConfig.EmbeddedKafka(config))
        {
            embedded = MockKafkaCluster.Start(config.GetString("broker.kafka.embedded.host"), config.GetInt("broker.kafka.embedded.port"));
            bootstrap = embedded.BootstrapServers;
            // A factory registration, resolved first below: the container disposes it, and last.
            builder.Services.AddSingleton(_ => embedded);
        }
        var kafka = BrokerConfig.Kafka(config, bootstrap);
        var connection = BrokerConfig.Connection(config);
        var adminToken = AdminToken.From(config);
        builder.AddBrokerSecurity(config, kafka, adminToken);
        builder.Services.AddSingleton(kafka);
        builder.Services.AddSingleton(connection);
        builder.Services.AddSingleton<ITopicProvisioner>(_ => TopicCreation(config, embedded) switch
        {
            "embedded" => new EmbeddedKafkaProvisioner(embedded ?? throw new ConfigurationException("topic-creation = embedded needs the embedded log")),
            "devkafka" => new DevKafkaProvisioner(config.GetString("broker.kafka.devkafka-admin")),
            "none" => new NoTopicCreation(),
            "admin" => new AdminClientTopicProvisioner(kafka),
            var other => throw new ConfigurationException($"broker.kafka.topic-creation: unknown mode '{other}'"),
        });
        builder.Services.AddSingleton<KafkaLog>();
        builder.AddBrokerMetrics(config);
        builder.Services.AddSingleton(sp =>
        {
            var log = sp.GetRequiredService<KafkaLog>();
            return new FeedHub(kafka, sp.GetRequiredService<ILogger<FeedHub>>(), sp.GetRequiredService<BrokerMetrics>(), (topic, ct) => log.PartitionCountAsync(topic, ct),
                BrokerConfig.RecentHistory(config));
        });
        builder.Services.AddSingleton(_ => new CatchUpReader(kafka)); // factory: disposed with the host
        builder.Services.AddSingleton<ConnectionRegistry>();
        var sessionStore = PersistenceSetup.ConnectionString(config, out var sessionStoreProblem);
        builder.Services.AddBrokerAkka(config, sessionStore);
        builder.Services.AddSingleton(_ => new ReadinessProbe(kafka, BrokerConfig.PersistenceProvider(config), sessionStore));
        builder.Services.AddSingleton(sp => new Publisher(
            sp.GetRequiredService<KafkaLog>(), sp.GetRequiredService<IRequiredActor<TopicRegion>>().ActorRef, connection.RequestTimeout, sp.GetRequiredService<BrokerMetrics>()));
        builder.Services.AddSingleton(sp => new NodeServices(
            connection,
            sp.GetRequiredService<KafkaLog>(),
            sp.GetRequiredService<FeedHub>(),
            sp.GetRequiredService<CatchUpReader>(),
            sp.GetRequiredService<Publisher>(),
            sp.GetRequiredService<ConnectionRegistry>(),
            sp.GetRequiredService<BrokerMetrics>(),
            sp.GetRequiredService<IRequiredActor<SessionRegion>>().ActorRef,
            sp.GetRequiredService<ActorSystem>(),
            BrokerConfig.Sessions(config)));

        var deadline = config.GetTimeSpan("broker.shutdown-deadline");
        // Leave room after the connections' deadline for the shard hand-off and cluster leave.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = deadline + TimeSpan.FromSeconds(30));

        var app = builder.Build();
        if (embedded is not null) app.Services.GetRequiredService<MockKafkaCluster>();
        app.UseBrokerSecurity();
        app.UsePublicSurface(config.GetString("broker.http.internal-endpoints"));
        app.UseWebSockets();
        app.MapHealth();
        app.MapBrokerMetrics();
        app.Map("/ws", (Delegate)HandleWebSocket);
        app.MapHttpPublish(HttpPublishSettings.From(config));
        if (config.GetBoolean("broker.http.dashboard", true)) app.MapDashboard();
        app.MapAdminApi(AdminGuard.From(config, adminToken, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Broker.Admin")));

        var lifetime = app.Lifetime;
        var log = app.Logger;
        lifetime.ApplicationStarted.Register(() =>
        {
            var url = app.HttpAddress();
            log.LogInformation("Broker listening on {Url} (WebSocket clients: {Ws}/ws)", url, url.Replace("http", "ws"));
            log.LogInformation("Admin API on {Url}/admin (brokerctl --endpoint {Url})", BrokerEndpoints.Url(endpoints.Admin), BrokerEndpoints.Url(endpoints.Admin));
            log.LogInformation("Durable sessions stored with {Provider}", BrokerConfig.PersistenceProvider(config));
            if (sessionStoreProblem is not null)
                log.LogError("The session store is unavailable ({Problem}): durable-session operations answer `unavailable`", sessionStoreProblem);
            if (embedded is not null)
            {
                log.LogInformation("Kafka-protocol log (embedded) on {Bootstrap}: use it as bootstrap.servers, e.g. kcat -b {Bootstrap} -P -t <topic>", embedded.BootstrapServers, embedded.BootstrapServers);
                log.LogWarning("The embedded Kafka-protocol log keeps messages IN MEMORY ONLY: they are lost when this process stops. Use a real Kafka cluster (broker.kafka.bootstrap-servers) in production.");
            }
            else
            {
                log.LogInformation("Kafka bootstrap servers: {Bootstrap}", kafka.BootstrapServers);
            }
        });

        lifetime.ApplicationStopping.Register(() =>
        {
            // SIGTERM: stop accepting, close live connections with 1001 so clients reconnect elsewhere.
            var registry = app.Services.GetRequiredService<ConnectionRegistry>();
            log.LogInformation("Shutting down: closing {Count} connections with 1001", registry.Count);
            registry.DrainAsync(CloseCodes.GoingAway, "server shutting down", deadline).Wait();
        });
        return app;
    }

    private static IPAddress ResolveHost(string host) => host.Trim() switch
    {
        "" or "*" or "+" or "0.0.0.0" => IPAddress.Any,
        "localhost" => IPAddress.Loopback,
        var h when IPAddress.TryParse(h, out var ip) => ip,
        var h => Dns.GetHostAddresses(h).FirstOrDefault() ?? throw new ConfigurationException($"cannot resolve the listen address '{h}'"),
    };

    private static string TopicCreation(Config config, MockKafkaCluster? embedded)
    {
        var mode = config.GetString("broker.kafka.topic-creation", "");
        return string.IsNullOrEmpty(mode) ? (embedded is not null ? "embedded" : "admin") : mode;
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
        var security = await context.RequestServices.GetRequiredService<WebSocketGate>().AdmitAsync(context, session.Count > 0);
        if (security is null) return;
        using var _ = security;
        var accepted = await WebSocketAcceptor.AcceptAsync(context, node.Settings);
        if (accepted is null) return;
        using var socket = accepted.Socket;
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger<Connection>();
        var options = new ConnectionOptions(client.Length > 0 ? client : null, session.Count > 0 ? session.ToString() : null, context.Request.Query["batch"] == "1", security);
        await new Connection(socket, accepted.Coalescing, node, logger, options, () =>
        {
            socket.Abort();
            context.Abort(); // a write blocked on a peer that does not read fails only when the transport goes
        }).RunAsync();
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
