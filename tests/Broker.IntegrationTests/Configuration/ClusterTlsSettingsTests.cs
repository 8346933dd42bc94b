using Broker.Core.Settings;
using Broker.Server.Configuration;

namespace Broker.IntegrationTests.Configuration;

/// <summary><c>broker.cluster.tls</c> as bound and checked at startup (no node is started).</summary>
public sealed class ClusterTlsSettingsTests
{
    private static NodeSettings Bind(Dictionary<string, string> overrides, string? hocon = null)
    {
        var config = BrokerConfig.Load(overrides, _ => null);
        return NodeSettings.Bind((hocon is null ? config : config.With(hocon)).Config);
    }

    [Fact]
    public void Off_by_default_and_on_with_a_pfx_file_whose_password_comes_from_a_file_and_is_never_printed()
    {
        Assert.False(Bind([]).Cluster.Tls.Enabled);
        var passwordFile = Path.GetTempFileName();
        try
        {
            File.WriteAllText(passwordFile, "s3cret-pfx-password\n");
            var cluster = Bind(new()
            {
                ["broker.cluster.tls.pfx-file"] = "/run/secrets/akka.pfx",
                ["broker.cluster.tls.pfx-password-file"] = passwordFile,
                ["broker.cluster.seed-nodes"] = "akka.ssl.tcp://broker@10.0.0.1:4053",
            }).Cluster;
            Assert.True(cluster.Tls.Enabled);
            Assert.Equal("s3cret-pfx-password", cluster.Tls.PfxPassword);
            Assert.Equal(PeerValidation.SameCertificate, cluster.Tls.PeerValidation);
            Assert.Equal(["akka.ssl.tcp://broker@10.0.0.1:4053"], cluster.SeedNodes);
            Assert.DoesNotContain("s3cret", cluster.ToString());
        }
        finally
        {
            File.Delete(passwordFile);
        }
    }

    [Fact]
    public void Seed_addresses_must_use_the_scheme_of_the_nodes_transport()
    {
        var plainSeedWithTls = Assert.Throws<SettingsException>(() => Bind(new()
        {
            ["broker.cluster.tls.pfx-file"] = "/run/secrets/akka.pfx",
            ["broker.cluster.seed-nodes"] = "akka.tcp://broker@10.0.0.1:4053",
        }));
        Assert.Equal("broker.cluster.seed-nodes", plainSeedWithTls.Key);
        Assert.Contains("akka.ssl.tcp://broker@10.0.0.1:4053", plainSeedWithTls.Expected);

        var tlsSeedWithoutTls = Assert.Throws<SettingsException>(() => Bind(new() { ["broker.cluster.seed-nodes"] = "akka.ssl.tcp://broker@10.0.0.1:4053" }));
        Assert.Contains("broker.cluster.tls", tlsSeedWithoutTls.Expected);
    }

    [Fact]
    public void Akkas_own_enable_ssl_switch_is_refused_in_favour_of_broker_cluster_tls()
    {
        var e = Assert.Throws<SettingsException>(() => Bind([], "akka.remote.dot-netty.tcp.enable-ssl = true"));
        Assert.Equal("akka.remote.dot-netty.tcp.enable-ssl", e.Key);
        Assert.Contains("broker.cluster.tls.pfx-file", e.Expected);
    }

    [Fact]
    public void A_password_file_that_cannot_be_read_and_an_unknown_peer_validation_name_their_key()
    {
        var missing = Assert.Throws<SettingsException>(() => Bind(new()
        {
            ["broker.cluster.tls.pfx-file"] = "/run/secrets/akka.pfx",
            ["broker.cluster.tls.pfx-password-file"] = "/no/such/password-file",
        }));
        Assert.Equal("broker.cluster.tls.pfx-password-file", missing.Key);
        var validation = Assert.Throws<SettingsException>(() => Bind(new() { ["broker.cluster.tls.peer-validation"] = "none" }));
        Assert.Equal("broker.cluster.tls.peer-validation", validation.Key);
    }

    [Fact]
    public void A_pfx_file_that_cannot_be_loaded_stops_the_node_with_a_line_naming_the_key()
    {
        var notPkcs12 = Path.GetTempFileName();
        try
        {
            File.WriteAllText(notPkcs12, "not a PKCS#12 file");
            var settings = Bind(new() { ["broker.cluster.tls.pfx-file"] = notPkcs12 }).Cluster.Tls;
            var e = Assert.Throws<StartupException>(() => Broker.Server.Security.ClusterTls.Load(settings));
            Assert.StartsWith($"cannot load the certificate of broker.cluster.tls.pfx-file ({notPkcs12})", e.Message);
        }
        finally
        {
            File.Delete(notPkcs12);
        }
    }
}
