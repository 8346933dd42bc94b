using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

internal static class Repository
{
    public static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Broker.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}

/// <summary>docker-compose.yml and deploy/nginx.conf: the production topology validates and has its parts.</summary>
public sealed class ComposeFileTests
{
    [Fact(Timeout = 120_000)]
    public async Task Docker_compose_config_validates_with_kafka_postgres_three_broker_nodes_and_nginx()
    {
        var root = Repository.Root();
        var (exit, config, error) = await Command.RunAsync("docker-compose", ["-f", "docker-compose.yml", "config"], root, TimeSpan.FromSeconds(90));
        Assert.True(exit == 0, $"docker-compose config failed ({exit}):\n{error}");

        foreach (var service in new[] { "kafka", "postgres", "broker1", "broker2", "broker3", "nginx" })
            Assert.Matches($"(?m)^  {service}:$", config);
        Assert.Contains("KAFKA_PROCESS_ROLES: broker,controller", config);
        const string seeds = "BROKER_SEEDS: akka.tcp://broker@broker1:4053,akka.tcp://broker@broker2:4053,akka.tcp://broker@broker3:4053";
        Assert.Equal(3, config.Split(seeds).Length - 1);
        foreach (var node in new[] { "broker1", "broker2", "broker3" })
            Assert.Contains($"BROKER_CLUSTER_HOST: {node}", config);
        Assert.Equal(3, config.Split("BROKER_KAFKA_BOOTSTRAP: kafka:9092").Length - 1);
        Assert.Equal(3, config.Split("BROKER_TOPIC_CREATION: admin").Length - 1);
        Assert.Equal(3, config.Split("BROKER_DB_PROVIDER: postgresql").Length - 1);
        Assert.Equal(3, config.Split("BROKER_DB_CONNECTION: Host=postgres;").Length - 1);
        Assert.Contains("deploy/nginx.conf:/etc/nginx/nginx.conf", config);
    }

    [Fact]
    public void The_nginx_configuration_proxies_websockets_to_the_three_nodes()
    {
        var conf = File.ReadAllText(Path.Combine(Repository.Root(), "deploy", "nginx.conf"));
        foreach (var line in new[]
                 {
                     "server broker1:8080", "server broker2:8080", "server broker3:8080",
                     "proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
                     "proxy_set_header Connection $connection_upgrade;", "proxy_read_timeout 1h;",
                 })
            Assert.Contains(line, conf);
    }
}
