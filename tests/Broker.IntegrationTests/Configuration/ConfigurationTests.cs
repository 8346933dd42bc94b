using Akka.Configuration;
using Broker.Core.Settings;
using Broker.Server.Configuration;

namespace Broker.IntegrationTests.Configuration;

/// <summary>The configuration model in process: layers, binding, validation, unknown keys (no node is started).</summary>
public sealed class ConfigurationTests
{
    private static LoadedConfig Load(Dictionary<string, string>? environment = null, Dictionary<string, string>? overrides = null) =>
        BrokerConfig.Load(overrides, name => environment?.GetValueOrDefault(name));

    [Fact]
    public void Every_key_of_the_defaults_is_read_by_a_settings_record()
    {
        var reader = new SettingsReader(BrokerDefaults.Config);
        NodeSettings.Bind(reader);
        var read = reader.KeysRead.ToHashSet();
        var unread = Leaves(BrokerDefaults.Config.GetValue("broker"), "broker").Where(k => !read.Contains(k)).ToList();
        Assert.True(unread.Count == 0, "keys in hocon/broker.conf that no settings record reads: " + string.Join(", ", unread));
    }

    [Fact]
    public void Every_environment_variable_sets_a_key_of_the_defaults()
    {
        var defaults = BrokerDefaults.Config;
        foreach (var (variable, key) in BrokerConfig.EnvironmentKeys)
            Assert.True(defaults.HasPath(key), $"{variable} sets {key}, which hocon/broker.conf does not have");
        Assert.True(defaults.HasPath(BrokerConfig.SeedsKey));
    }

    [Fact]
    public void Environment_variables_override_the_file_and_the_file_overrides_the_defaults()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "broker.http.port = 1234\nbroker.admin.port = 2345\n");
            var config = Load(new() { ["BROKER_CONFIG"] = file, ["BROKER_ADMIN_PORT"] = "3456", ["BROKER_SEEDS"] = "akka.tcp://broker@a:4053, akka.tcp://broker@b:4053" });
            var settings = NodeSettings.Bind(config.Config);
            Assert.Equal((1234, 3456), (settings.Http.Port, settings.Admin.Port));
            Assert.Equal(["akka.tcp://broker@a:4053", "akka.tcp://broker@b:4053"], settings.Cluster.SeedNodes);
            Assert.Equal([Path.GetFullPath(file)], config.Files);
            Assert.Equal(Path.GetFullPath(file), config.OriginOf("broker.http.port"));
            Assert.Equal("env BROKER_ADMIN_PORT", config.OriginOf("broker.admin.port"));
            Assert.Equal("the defaults", config.OriginOf("broker.kafka.partitions"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("BROKER_HTTP_PORT", "abc", "broker.http.port")]
    [InlineData("BROKER_ADMIN_PORT", "70000", "broker.admin.port")]
    [InlineData("BROKER_DASHBOARD", "nope", "broker.http.dashboard")]
    [InlineData("BROKER_SEEDS", "garbage", "broker.cluster.seed-nodes")]
    [InlineData("BROKER_SEEDS", "akka.tcp://other@10.0.0.1:4053", "broker.cluster.seed-nodes")]
    [InlineData("BROKER_SBR_STRATEGY", "foo", "broker.cluster.split-brain-resolver.active-strategy")]
    [InlineData("BROKER_SBR_STRATEGY", "static-quorum", "broker.cluster.split-brain-resolver.quorum-size")]
    [InlineData("BROKER_KAFKA_EMBEDDED", "maybe", "broker.kafka.embedded.enabled")]
    [InlineData("BROKER_KAFKA_EMBEDDED", "off", "broker.kafka.embedded.enabled")]
    [InlineData("BROKER_KAFKA_BOOTSTRAP", "kafka", "broker.kafka.bootstrap-servers")]
    [InlineData("BROKER_MAX_FRAME_BYTES", "-5", "broker.websocket.max-frame-bytes")]
    [InlineData("BROKER_LOG_FORMAT", "xml", "broker.logging.format")]
    [InlineData("BROKER_DB_PROVIDER", "oracle", "broker.persistence.provider")]
    [InlineData("BROKER_DB_PROVIDER", "postgresql", "broker.persistence.connection-string")]
    [InlineData("BROKER_TOPIC_CREATION", "sometimes", "broker.kafka.topic-creation")]
    [InlineData("BROKER_HTTP_HOST", "no-such-host.invalid", "broker.http.host")]
    [InlineData("BROKER_INTERNAL_ENDPOINTS", "private", "broker.http.internal-endpoints")]
    [InlineData("BROKER_TLS_CERT_FILE", "cert.pem", "broker.http.tls.key-file")]
    [InlineData("BROKER_AUTH_MODE", "maybe", "broker.auth.mode")]
    [InlineData("BROKER_AUTH_MODE", "required", "broker.auth.mode")]
    [InlineData("BROKER_AUTH_HS256_SECRET", "too-short", "broker.auth.hs256-secret")]
    [InlineData("BROKER_AUTH_HS256_SECRET_FILE", "no-such-secret", "broker.auth.hs256-secret-file")]
    [InlineData("BROKER_AUTH_JWKS_URL", "ftp://keys", "broker.auth.jwks-url")]
    [InlineData("BROKER_ADMIN_TOKEN_FILE", "no-such-token", "broker.admin.token-file")]
    [InlineData("BROKER_WS_COMPRESSION", "perhaps", "broker.websocket.compression")]
    [InlineData("BROKER_OTLP_ENDPOINT", "collector:4317", "broker.metrics.otlp-endpoint")]
    public void A_bad_environment_value_fails_binding_naming_the_key_and_the_variable(string variable, string value, string key)
    {
        var config = Load(new() { [variable] = value });
        var e = Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config));
        Assert.Equal(key, e.Key);
        var line = config.Describe(e);
        Assert.DoesNotContain('\n', line);
        Assert.Contains(key, line);
        if (key == BrokerConfig.EnvironmentKeys.GetValueOrDefault(variable) || variable == BrokerConfig.SeedsVariable)
            Assert.Contains($"(from env {variable})", line);
        Assert.Contains("expected ", line);
    }

    [Fact]
    public void Secrets_are_read_from_their_files_at_startup_and_an_unreadable_one_names_its_key_and_path()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "s3cret\n");
            var environment = new Dictionary<string, string>
            {
                ["BROKER_DB_PROVIDER"] = "postgresql",
                ["BROKER_DB_CONNECTION"] = "Host=db;Username=broker;Database=broker",
                ["BROKER_DB_PASSWORD_FILE"] = file,
                ["BROKER_ADMIN_TOKEN_FILE"] = file,
            };
            var settings = NodeSettings.Bind(Load(environment).Config);
            Assert.Contains("password=s3cret", settings.Persistence.ConnectionString, StringComparison.OrdinalIgnoreCase);
            Assert.Equal("s3cret", settings.Admin.Token);

            environment["BROKER_DB_PASSWORD_FILE"] = file + ".missing";
            var config = Load(environment);
            var e = Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config));
            Assert.Equal("broker.persistence.password-file", e.Key);
            Assert.Contains($"(from env BROKER_DB_PASSWORD_FILE): expected a readable file holding the session store's database password ({file}.missing: no such file)", config.Describe(e));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Client_config_files_are_read_and_a_missing_one_names_its_property()
    {
        var config = Load().With("broker.kafka.client-config-files { \"sasl.password\" = \"no-such-file\" }");
        var e = Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config));
        Assert.Equal("broker.kafka.client-config-files.\"sasl.password\"", e.Key);
        Assert.Contains("(from an override)", config.Describe(e));
        // The entries of client-config are librdkafka's, not the broker's: no unknown-key warning.
        Assert.Empty(UnknownKeys.Find(Load().With("broker.kafka.client-config { \"security.protocol\" = SASL_SSL, sasl.username = u }").Config));
    }

    [Fact]
    public void A_multiplexed_namespace_without_a_fixed_kafka_topic_is_refused_naming_its_entry()
    {
        var config = Load().With("broker.namespaces = [{ pattern = \"user.>\", multiplex = on }]");
        Assert.Equal("broker.namespaces[0].multiplex", Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config)).Key);
        config = Load().With("broker.namespaces = [{ pattern = \"user.>\", kafka-topic = \"u.{topic}\", multiplex = on }]");
        Assert.Equal("broker.namespaces[0].kafka-topic", Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config)).Key);
        var rule = Assert.Single(NodeSettings.Bind(Load().With("broker.namespaces = [{ pattern = \"user.>\", kafka-topic = users, multiplex = on, partitions = 12 }]").Config).Kafka.Namespaces);
        Assert.True(rule.Map("user.42").Multiplexed);
    }

    [Fact]
    public void The_offset_index_is_on_by_default_can_be_turned_off_and_a_bad_value_names_its_key()
    {
        Assert.True(NodeSettings.Bind(Load().Config).OffsetIndex.Enabled);
        Assert.False(NodeSettings.Bind(Load().With("broker.fanout.offset-index.enabled = off").Config).OffsetIndex.Enabled);
        var config = Load().With("broker.fanout.offset-index.max-topics = 0");
        var e = Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config));
        Assert.Equal("broker.fanout.offset-index.max-topics", e.Key);
        Assert.Contains("(from an override)", config.Describe(e));
        Assert.Contains("expected a whole number of at least 1", config.Describe(e));
    }

    [Fact]
    public void Timings_that_were_constants_in_code_are_settings_with_the_same_defaults()
    {
        var settings = NodeSettings.Bind(Load().Config);
        Assert.Equal(TimeSpan.FromSeconds(1), settings.Topics.SettleRetry);
        Assert.Equal(TimeSpan.FromMilliseconds(200), settings.Kafka.ReplayYieldAfter);
        Assert.Equal(TimeSpan.FromSeconds(1), settings.Kafka.TopicListMaxAge);
        Assert.Equal(TimeSpan.FromSeconds(1), settings.Security.Auth.JwksMinReload);
        Assert.Equal(4, settings.Sessions.SweepParallelism);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.Health.HealthcheckTimeout);
    }

    [Theory]
    [InlineData("broker.topics.settle-retry = 0s", "broker.topics.settle-retry", "a duration greater than 0")]
    [InlineData("broker.kafka.replay-yield-after = soon", "broker.kafka.replay-yield-after", "a duration greater than 0")]
    [InlineData("broker.kafka.topic-list-max-age = -1s", "broker.kafka.topic-list-max-age", "a duration such as")]
    [InlineData("broker.auth.jwks-min-reload = 0", "broker.auth.jwks-min-reload", "a duration greater than 0")]
    [InlineData("broker.sessions.sweep-parallelism = 0", "broker.sessions.sweep-parallelism", "a whole number of at least 1")]
    [InlineData("broker.health.healthcheck-timeout = 0s", "broker.health.healthcheck-timeout", "a duration greater than 0")]
    public void A_bad_value_of_a_former_constant_names_its_key(string hocon, string key, string expected)
    {
        var config = Load().With(hocon);
        var e = Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config));
        Assert.Equal(key, e.Key);
        Assert.Contains("(from an override): expected " + expected, config.Describe(e));
    }

    [Fact]
    public void Namespace_access_levels_are_bound_with_the_namespace_and_need_auth_unless_anonymous()
    {
        var config = Load().With("broker.namespaces = [{ pattern = \"a.*\", publish = granted }]");
        Assert.Equal("broker.namespaces[0].publish", Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config)).Key);
        var secured = Load(new() { ["BROKER_AUTH_MODE"] = "required", ["BROKER_AUTH_HS256_SECRET"] = new string('k', 32) })
            .With("broker.namespaces = [{ pattern = \"a.*\", publish = granted }, { pattern = \"b.*\" }]");
        var access = NodeSettings.Bind(secured.Config).Security.Auth.Namespaces;
        Assert.Equal([Broker.Core.Security.AccessLevel.Granted, Broker.Core.Security.AccessLevel.Authenticated], access.Select(a => a.Publish));
    }

    [Fact]
    public void The_admin_api_may_share_the_http_port_number_only_on_another_address()
    {
        var same = Load(new() { ["BROKER_HTTP_PORT"] = "8181", ["BROKER_ADMIN_PORT"] = "8181" });
        Assert.Equal("broker.admin.port", Assert.Throws<SettingsException>(() => NodeSettings.Bind(same.Config)).Key);
        var other = Load(new() { ["BROKER_HTTP_PORT"] = "8181", ["BROKER_ADMIN_PORT"] = "8181", ["BROKER_ADMIN_HOST"] = "127.0.0.2" });
        Assert.Equal(8181, NodeSettings.Bind(other.Config).Admin.Port);
    }

    [Fact]
    public void Keys_of_a_namespace_entry_are_checked_and_named_by_index()
    {
        var config = Load().With("broker.namespaces = [{ pattern = \"a.*\" }, { pattern = \"b.*\", partitions = many }]");
        var e = Assert.Throws<SettingsException>(() => NodeSettings.Bind(config.Config));
        Assert.Equal("broker.namespaces[1].partitions", e.Key);
        Assert.Contains("(from an override)", config.Describe(e));
    }

    [Fact]
    public void Namespace_entries_take_what_they_leave_out_from_the_defaults()
    {
        var config = Load().With("broker.namespaces = [{ pattern = \"a.*\", kafka-prefix = \"x.\" }]");
        var rule = Assert.Single(NodeSettings.Bind(config.Config).Kafka.Namespaces);
        Assert.Equal("a.*", rule.Pattern);
        Assert.Equal(new TopicMapping("x.a.b", 1, 1, Create: true, ReadOnly: false, Retention: null), rule.Map("a.b"));
    }

    [Fact]
    public void Unknown_keys_are_reported_with_the_nearest_known_key()
    {
        var config = Load().With("""
            broker.http.prot = 8081
            broker.kafka.port = 9093
            broker.websocket.keepalive = 5s
            broker.frobnicate = yes
            broker.namespaces = [{ pattern = "a.*", partiton = 2 }]
            """);
        var warnings = UnknownKeys.Find(config.Config);
        Assert.Equal(
        [
            "unknown key broker.frobnicate (no setting has this name; hocon/broker.conf lists them all)",
            "unknown key broker.http.prot — did you mean broker.http.port?",
            "unknown key broker.kafka.port — did you mean broker.kafka.embedded.port?",
            "unknown key broker.namespaces[0].partiton — did you mean partitions?",
            "unknown key broker.websocket.keepalive — did you mean broker.websocket.keepalive-interval?",
        ], warnings.Order(StringComparer.Ordinal));
        Assert.Empty(UnknownKeys.Find(Load().Config));
    }

    [Fact]
    public void Relative_paths_resolve_against_the_current_directory()
    {
        var settings = NodeSettings.Bind(Load(new() { ["BROKER_DB_PATH"] = "state/sessions.db" }).Config);
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, "state", "sessions.db"), settings.Persistence.SqlitePath);
    }

    [Fact]
    public void A_missing_config_file_is_one_line_naming_the_variable_and_the_absolute_path()
    {
        var e = Assert.Throws<StartupException>(() => Load(new() { ["BROKER_CONFIG"] = "no-such.conf" }));
        Assert.Contains("BROKER_CONFIG=no-such.conf", e.Message);
        Assert.Contains(Path.GetFullPath("no-such.conf"), e.Message);
    }

    [Fact]
    public void A_config_file_that_does_not_parse_is_one_line()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "broker.http.port = ${no.such.key}\n");
            var e = Assert.Throws<StartupException>(() => Load(new() { ["BROKER_CONFIG"] = file }));
            Assert.StartsWith($"cannot parse the configuration file {Path.GetFullPath(file)}", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void The_readme_configuration_reference_names_every_key_and_every_environment_variable()
    {
        var readme = File.ReadAllText(Path.Combine(Repository.Root(), "README.md"));
        var section = readme[readme.IndexOf("\n## Configuration\n", StringComparison.Ordinal)..];
        var documented = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in section.Split('\n').Where(l => l.StartsWith("| `broker.", StringComparison.Ordinal)))
        {
            // "| `broker.kafka.partitions` / `replication-factor` | …": siblings of the first key.
            var cell = row.Split('|')[1];
            var keys = System.Text.RegularExpressions.Regex.Matches(cell, "`([^`]+)`").Select(m => m.Groups[1].Value).ToList();
            var parent = keys[0][..keys[0].LastIndexOf('.')];
            documented.Add(keys[0]);
            foreach (var sibling in keys.Skip(1)) documented.Add(parent + "." + sibling);
        }
        var keysOfDefaults = Leaves(BrokerDefaults.Config.GetValue("broker"), "broker").ToList();
        var missing = keysOfDefaults.Where(k => !documented.Contains(k)).ToList();
        Assert.True(missing.Count == 0, "keys of hocon/broker.conf missing in the README: " + string.Join(", ", missing));
        var unknown = documented.Where(k => !keysOfDefaults.Contains(k)).ToList();
        Assert.True(unknown.Count == 0, "keys in the README that hocon/broker.conf does not have: " + string.Join(", ", unknown));
        foreach (var variable in BrokerConfig.EnvironmentKeys.Keys.Append(BrokerConfig.SeedsVariable).Append(BrokerConfig.ConfigFileVariable))
            Assert.Contains($"`{variable}`", section);
    }

    /// <summary>The keys of the defaults: values, and empty objects (maps such as broker.kafka.client-config).</summary>
    private static IEnumerable<string> Leaves(Akka.Configuration.Hocon.HoconValue value, string path) =>
        value.IsObject() && value.GetObject().Items.Count > 0
            ? value.GetObject().Items.SelectMany(kv => Leaves(kv.Value, path + "." + kv.Key))
            : [path];
}
