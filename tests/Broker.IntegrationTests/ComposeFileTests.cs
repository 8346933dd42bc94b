using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
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

/// <summary>
/// docker-compose.yml and what it mounts (deploy/): the production topology validates with Debian's
/// `docker-compose config`, has its parts, and can be operated (healthchecks, brokerctl, admin API
/// on the internal network with a secret token, Prometheus and Grafana provisioned from the repository).
/// </summary>
public sealed class ComposeFileTests
{
    private static readonly string[] Brokers = ["broker1", "broker2", "broker3"];

    private static async Task<(string Text, JsonNode Config)> ComposeConfigAsync()
    {
        var (exit, config, error) = await Command.RunAsync("docker-compose", ["-f", "docker-compose.yml", "config"], Repository.Root(), TimeSpan.FromSeconds(90));
        Assert.True(exit == 0, $"docker-compose config failed ({exit}):\n{error}");
        return (config, Yaml.Parse(config));
    }

    private static string S(JsonNode? n) => n?.GetValue<string>() ?? "";

    private static IEnumerable<string> Strings(JsonNode? n) => n?.AsArray().Select(S) ?? [];

    [Fact(Timeout = 120_000)]
    public async Task Docker_compose_config_validates_with_kafka_postgres_three_broker_nodes_and_nginx()
    {
        var (config, _) = await ComposeConfigAsync();

        foreach (var service in new[] { "kafka", "postgres", "broker1", "broker2", "broker3", "nginx", "brokerctl", "prometheus", "grafana" })
            Assert.Matches($"(?m)^  {service}:$", config);
        Assert.Contains("KAFKA_PROCESS_ROLES: broker,controller", config);
        const string seeds = "BROKER_SEEDS: akka.tcp://broker@broker1:4053,akka.tcp://broker@broker2:4053,akka.tcp://broker@broker3:4053";
        Assert.Equal(3, config.Split(seeds).Length - 1);
        foreach (var node in Brokers)
            Assert.Contains($"BROKER_CLUSTER_HOST: {node}", config);
        Assert.Equal(3, config.Split("BROKER_KAFKA_BOOTSTRAP: kafka:9092").Length - 1);
        Assert.Equal(3, config.Split("BROKER_TOPIC_CREATION: admin").Length - 1);
        Assert.Equal(3, config.Split("BROKER_DB_PROVIDER: postgresql").Length - 1);
        Assert.Equal(3, config.Split("BROKER_DB_CONNECTION: Host=postgres;").Length - 1);
        Assert.Contains("deploy/nginx.conf:/etc/nginx/nginx.conf", config);
    }

    [Fact(Timeout = 120_000)]
    public async Task Brokers_are_healthchecked_on_readyz_and_nginx_waits_until_they_are_healthy()
    {
        var (_, config) = await ComposeConfigAsync();
        var services = config["services"]!;
        foreach (var node in Brokers)
        {
            var health = services[node]!["healthcheck"]!;
            Assert.Equal(["CMD", "dotnet", "Broker.Server.dll", "--healthcheck", "http://127.0.0.1:8080/readyz"], Strings(health["test"]));
            Assert.Equal("8080", S(services[node]!["environment"]!["BROKER_HTTP_PORT"]));
            Assert.Equal("service_healthy", S(services["nginx"]!["depends_on"]![node]!["condition"]));
        }
        // The image's entry point is the binary the healthcheck runs with --healthcheck.
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(Repository.Root(), "src", "Broker.Server", "Dockerfile"));
        Assert.Contains("ENTRYPOINT [\"dotnet\", \"Broker.Server.dll\"]", dockerfile);
    }

    [Fact(Timeout = 120_000)]
    public async Task Brokers_require_tokens_keep_secrets_in_files_and_the_image_runs_as_a_non_root_user()
    {
        var (_, config) = await ComposeConfigAsync();
        var services = config["services"]!;
        foreach (var node in Brokers)
        {
            var env = services[node]!["environment"]!;
            Assert.Equal("required", S(env["BROKER_AUTH_MODE"]));
            Assert.Equal("/run/secrets/jwt_secret", S(env["BROKER_AUTH_HS256_SECRET_FILE"]));
            Assert.Equal("/run/secrets/postgres_password", S(env["BROKER_DB_PASSWORD_FILE"]));
            Assert.Equal("admin", S(env["BROKER_INTERNAL_ENDPOINTS"]));
            Assert.DoesNotContain("Password", S(env["BROKER_DB_CONNECTION"]));
            var secrets = services[node]!["secrets"]!.AsArray().Select(s => S(s!["source"])).ToList();
            Assert.Contains("jwt_secret", secrets);
            Assert.Contains("postgres_password", secrets);
        }
        Assert.Equal("/run/secrets/postgres_password", S(services["postgres"]!["environment"]!["POSTGRES_PASSWORD_FILE"]));
        Assert.Null(services["postgres"]!["environment"]!["POSTGRES_PASSWORD"]);
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(Repository.Root(), "src", "Broker.Server", "Dockerfile"));
        Assert.Contains("USER $APP_UID", dockerfile);
    }

    [Fact(Timeout = 120_000)]
    public async Task Every_password_is_a_secret_file_made_by_the_readmes_command_grafanas_included()
    {
        var (_, config) = await ComposeConfigAsync();
        var services = config["services"]!;

        // Grafana reads its admin password from the secret (its image turns GF_*__FILE into GF_*, and refuses both).
        var grafana = services["grafana"]!;
        Assert.Equal("/run/secrets/grafana_admin_password", S(grafana["environment"]!["GF_SECURITY_ADMIN_PASSWORD__FILE"]));
        Assert.Null(grafana["environment"]!["GF_SECURITY_ADMIN_PASSWORD"]);
        Assert.Contains("grafana_admin_password", grafana["secrets"]!.AsArray().Select(s => S(s!["source"])));
        Assert.EndsWith("deploy/secrets/grafana-admin-password", S(config["secrets"]!["grafana_admin_password"]!["file"]));

        // No service has a password or token in its environment, only the path of a file holding it.
        foreach (var (name, service) in services.AsObject())
        {
            foreach (var (variable, _) in service!["environment"]?.AsObject() ?? new JsonObject())
            {
                if (variable.Contains("PASSWORD", StringComparison.Ordinal) || variable.Contains("TOKEN", StringComparison.Ordinal) || variable.Contains("SECRET", StringComparison.Ordinal))
                    Assert.True(variable.EndsWith("_FILE", StringComparison.Ordinal), $"{name} has {variable} in its environment: use a secret file");
            }
        }

        // Every secret file is one that the README's command makes (and the compose header names).
        var readme = await File.ReadAllTextAsync(Path.Combine(Repository.Root(), "README.md"));
        var make = readme.Split('\n').Single(l => l.StartsWith("for s in ", StringComparison.Ordinal) && l.Contains("deploy/secrets/$s", StringComparison.Ordinal));
        var made = make["for s in ".Length..make.IndexOf(';')].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var header = string.Join('\n', File.ReadAllLines(Path.Combine(Repository.Root(), "docker-compose.yml")).TakeWhile(l => l.StartsWith('#')));
        foreach (var (name, secret) in config["secrets"]!.AsObject())
        {
            var file = Path.GetFileName(S(secret!["file"]));
            Assert.Contains(file, made);
            Assert.Contains($"deploy/secrets/{file} ", header);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task The_admin_api_is_on_the_internal_network_with_a_secret_token_and_brokerctl_runs_as_a_service()
    {
        var (_, config) = await ComposeConfigAsync();
        var services = config["services"]!;
        foreach (var node in Brokers)
        {
            var env = services[node]!["environment"]!;
            Assert.Equal("0.0.0.0", S(env["BROKER_ADMIN_HOST"]));
            Assert.Equal("9080", S(env["BROKER_ADMIN_PORT"]));
            Assert.Equal("/run/secrets/admin_token", S(env["BROKER_ADMIN_TOKEN_FILE"]));
            Assert.Contains("admin_token", services[node]!["secrets"]!.AsArray().Select(s => S(s!["source"])));
            // Nothing of a broker is published to the host: clients come through nginx, operators through brokerctl.
            Assert.Null(services[node]!["ports"]);
        }
        Assert.EndsWith("deploy/secrets/admin-token", S(config["secrets"]!["admin_token"]!["file"]));
        // The secret itself is never committed.
        Assert.Contains("*", await File.ReadAllTextAsync(Path.Combine(Repository.Root(), "deploy", "secrets", ".gitignore")));

        var ctl = services["brokerctl"]!;
        Assert.Equal(["dotnet", "/app/brokerctl/brokerctl.dll"], Strings(ctl["entrypoint"]));
        Assert.Equal(["tools"], Strings(ctl["profiles"]));
        Assert.Equal("http://broker1:9080", S(ctl["environment"]!["BROKERCTL_ENDPOINT"]));
        Assert.Equal("/run/secrets/admin_token", S(ctl["environment"]!["BROKERCTL_TOKEN_FILE"]));
        Assert.Equal(S(services["broker1"]!["image"]), S(ctl["image"]));
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(Repository.Root(), "src", "Broker.Server", "Dockerfile"));
        Assert.Contains("dotnet publish src/Broker.Cli -c Release -o /app/brokerctl", dockerfile);
        // The README shows how to run it.
        Assert.Contains("docker-compose run --rm brokerctl cluster show", await File.ReadAllTextAsync(Path.Combine(Repository.Root(), "README.md")));
    }

    [Fact(Timeout = 120_000)]
    public async Task Prometheus_and_grafana_are_provisioned_from_files_in_the_repository()
    {
        var (_, config) = await ComposeConfigAsync();
        var root = Repository.Root();
        var services = config["services"]!;

        // Every file or directory a service mounts from the host exists in the repository.
        var mounts = new Dictionary<string, string>();
        foreach (var (name, service) in services.AsObject())
        {
            foreach (var volume in service!["volumes"]?.AsArray().Select(S) ?? [])
            {
                var parts = volume.Split(':');
                if (!parts[0].StartsWith('/')) continue; // a named volume
                Assert.True(File.Exists(parts[0]) || Directory.Exists(parts[0]), $"{name} mounts {parts[0]}, which does not exist");
                Assert.StartsWith(root, parts[0]);
                mounts[parts[1]] = parts[0];
            }
        }

        Assert.Equal(Path.Combine(root, "deploy", "prometheus", "prometheus.yml"), mounts["/etc/prometheus/prometheus.yml"]);
        Assert.Contains("--config.file=/etc/prometheus/prometheus.yml", Strings(services["prometheus"]!["command"]));
        Assert.Equal(Path.Combine(root, "deploy", "grafana", "provisioning"), mounts["/etc/grafana/provisioning"]);
        Assert.Equal(Path.Combine(root, "deploy", "grafana", "dashboards"), mounts["/var/lib/grafana/dashboards"]);

        // Prometheus scrapes /metrics of the three nodes on their admin listener (internal endpoints moved there).
        var prometheus = Yaml.ParseFile(root, "deploy", "prometheus", "prometheus.yml");
        var job = prometheus["scrape_configs"]!.AsArray().Single(j => S(j!["job_name"]) == "broker")!;
        Assert.Equal("/metrics", S(job["metrics_path"]));
        Assert.Equal(Brokers.Select(b => $"{b}:9080"), job["static_configs"]!.AsArray().SelectMany(c => Strings(c!["targets"])));

        // Grafana: a Prometheus data source at the prometheus service, the dashboards directory as provider.
        var datasource = Yaml.ParseFile(root, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml")["datasources"]!.AsArray().Single()!;
        Assert.Equal("prometheus", S(datasource["type"]));
        Assert.Equal("http://prometheus:9090", S(datasource["url"]));
        // Prometheus's own UI on the host's loopback only.
        Assert.Equal(["127.0.0.1:9090:9090/tcp"], Strings(services["prometheus"]!["ports"]));
        var provider = Yaml.ParseFile(root, "deploy", "grafana", "provisioning", "dashboards", "broker.yml")["providers"]!.AsArray().Single()!;
        Assert.Equal("/var/lib/grafana/dashboards", S(provider["options"]!["path"]));
        var home = S(services["grafana"]!["environment"]!["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]);
        Assert.True(File.Exists(Path.Combine(mounts["/var/lib/grafana/dashboards"], Path.GetFileName(home))), home);
        // The dashboard's queries use the provisioned data source.
        var dashboard = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(root, "deploy", "grafana", "dashboards", "broker.json")))!;
        Assert.All(GrafanaDashboardTests.Targets(dashboard), t => Assert.Equal(S(datasource["uid"]), S(t["datasource"]!["uid"])));
    }

    [Fact(Timeout = 60_000)]
    public async Task Promtool_accepts_the_prometheus_configuration()
    {
        var (exit, output, error) = await Command.RunAsync("promtool", ["check", "config", "deploy/prometheus/prometheus.yml"], Repository.Root(), TimeSpan.FromSeconds(30));
        Assert.True(exit == 0, $"promtool check config failed ({exit}):\n{output}\n{error}");
        Assert.Contains("SUCCESS", output + error);
    }

    [Fact]
    public void The_compose_header_names_files_that_exist()
    {
        var root = Repository.Root();
        var compose = File.ReadAllLines(Path.Combine(root, "docker-compose.yml"));
        var header = string.Join('\n', compose.TakeWhile(l => l.StartsWith('#')));
        var files = Regex.Matches(header, @"(?:tests|deploy|src)/[\w./-]+\.\w+").Select(m => m.Value).ToList();
        Assert.NotEmpty(files);
        Assert.All(files, f => Assert.True(File.Exists(Path.Combine(root, f)), $"the header of docker-compose.yml names {f}, which does not exist"));
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
