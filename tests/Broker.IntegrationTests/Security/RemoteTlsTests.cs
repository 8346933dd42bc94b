using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Cluster;
using Broker.IntegrationTests.Infrastructure;
using Broker.Tests.Infrastructure;

namespace Broker.IntegrationTests.Security;

/// <summary>
/// Two nodes whose Akka.Remote runs over TLS (<c>broker.cluster.tls</c>) with a self-signed
/// PKCS#12 made by openssl in a temporary directory, its password in a file. Also a second
/// certificate, of nobody in the cluster.
/// </summary>
public sealed class RemoteTlsFixture : IAsyncLifetime
{
    private string _dir = "";

    public TestCluster Cluster { get; private set; } = null!;
    public string PasswordFile { get; private set; } = "";
    public string NodePfx { get; private set; } = "";
    public string OtherPfx { get; private set; } = "";

    /// <summary>The settings that turn TLS on, with the certificate in <paramref name="pfx"/>.</summary>
    public Dictionary<string, string> Tls(string pfx) => new()
    {
        ["broker.cluster.tls.pfx-file"] = pfx,
        ["broker.cluster.tls.pfx-password-file"] = PasswordFile,
    };

    public async Task InitializeAsync()
    {
        _dir = Directory.CreateTempSubdirectory("broker-remote-tls-").FullName;
        PasswordFile = Path.Combine(_dir, "pfx-password");
        await File.WriteAllTextAsync(PasswordFile, Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)) + "\n");
        NodePfx = await MakePfxAsync("node");
        OtherPfx = await MakePfxAsync("other");
        Cluster = await TestCluster.StartAsync(2, Tls(NodePfx));
    }

    /// <summary>A self-signed certificate and its key, as PKCS#12 protected by the password file.</summary>
    private async Task<string> MakePfxAsync(string name)
    {
        var key = Path.Combine(_dir, name + ".key");
        var cert = Path.Combine(_dir, name + ".crt");
        var pfx = Path.Combine(_dir, name + ".pfx");
        await OpenSsl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", $"/CN=broker-{name}");
        await OpenSsl("pkcs12", "-export", "-inkey", key, "-in", cert, "-out", pfx, "-passout", "file:" + PasswordFile);
        return pfx;
    }

    private async Task OpenSsl(params string[] args)
    {
        var (exit, _, err) = await Command.RunAsync("openssl", args, _dir, TimeSpan.FromSeconds(30));
        Assert.True(exit == 0, $"openssl {args[0]} failed: {err}");
    }

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
        Directory.Delete(_dir, true);
    }
}

/// <summary>Akka.Remote over TLS: the cluster forms and works, its port speaks TLS, and nodes without the certificate stay out.</summary>
public sealed class RemoteTlsTests(RemoteTlsFixture fixture) : IClassFixture<RemoteTlsFixture>
{
    private static readonly TimeSpan JoinAttemptTimeout = TimeSpan.FromSeconds(45);

    private TestBroker A => fixture.Cluster.Nodes[0];
    private TestBroker B => fixture.Cluster.Nodes[1];

    private static Akka.Cluster.Cluster ClusterOf(TestBroker node) => Akka.Cluster.Cluster.Get(node.App.Services.GetRequiredService<ActorSystem>());

    [Fact]
    public async Task Two_nodes_with_the_certificate_form_a_cluster_over_TLS_and_a_publish_on_one_reaches_a_subscriber_on_the_other()
    {
        foreach (var node in new[] { A, B })
        {
            var members = ClusterOf(node).State.Members;
            Assert.Equal(2, members.Count(m => m.Status == MemberStatus.Up));
            Assert.All(members, m => Assert.Equal("akka.ssl.tcp", m.Address.Protocol));
        }

        const string topic = "remote-tls.cross";
        await using var onB = await B.ConnectAsync();
        await using var onA = await A.ConnectAsync();
        await onB.SubscribeAsync(topic, "s");
        var pos = await onA.PublishAsync(topic, new { over = "tls" }, "p");
        var message = await onB.ExpectAsync("message");
        Assert.Equal(pos, (string?)message["pos"]);
        Assert.Equal("tls", (string?)message["data"]!["over"]);
    }

    [Fact]
    public async Task The_remoting_port_completes_a_TLS_handshake_presenting_the_node_certificate()
    {
        using var own = X509CertificateLoader.LoadPkcs12FromFile(fixture.NodePfx, (await File.ReadAllTextAsync(fixture.PasswordFile)).Trim());
        var port = ClusterOf(A).SelfAddress.Port!.Value;
        using var tcp = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await tcp.ConnectAsync("127.0.0.1", port, timeout.Token);
        X509Certificate? presented = null;
        await using var tls = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) =>
        {
            presented = certificate;
            return true;
        });
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            ClientCertificates = [own],
        }, timeout.Token);
        Assert.True(tls.IsAuthenticated);
        Assert.NotNull(presented);
        Assert.Equal(own.GetCertHashString(), presented.GetCertHashString());
    }

    [Fact]
    public async Task A_node_without_TLS_tries_to_join_and_never_becomes_a_member()
    {
        var settings = fixture.Cluster.NodeSettings(TestCluster.FreePort(), null);
        // The same nodes at plain-TCP addresses: what a node without broker.cluster.tls would be given.
        settings["broker.cluster.seed-nodes"] = string.Join(",", fixture.Cluster.Seeds.Select(s => s.Replace("akka.ssl.tcp://", "akka.tcp://")));
        await AssertStaysOutAsync(settings, expectPinningFailure: false);
    }

    [Fact]
    public async Task A_node_with_TLS_but_another_certificate_tries_to_join_and_never_becomes_a_member()
    {
        var settings = fixture.Cluster.NodeSettings(TestCluster.FreePort(), fixture.Tls(fixture.OtherPfx));
        await AssertStaysOutAsync(settings, expectPinningFailure: true);
    }

    /// <summary>
    /// Starts an outsider that joins the TLS nodes, waits until a TLS node has rejected its connection
    /// (the TLS handshake failed) and the outsider has seen its association fail, then checks that no
    /// TLS node has it as a member and that it is not Up itself.
    /// </summary>
    private async Task AssertStaysOutAsync(Dictionary<string, string> settings, bool expectPinningFailure)
    {
        var logs = new[] { LogCapture.Attach(A), LogCapture.Attach(B) };
        // The outsider's log from before it starts: it tries to join while starting, and its first
        // failed association (logged once; later attempts to the gated address are not) may come
        // before StartAsync returns.
        var logOut = new LogCapture();
        await using var outsider = await TestBroker.StartAsync(settings, log: logOut);
        var outsiderAddress = ClusterOf(outsider).SelfAddress;

        await Eventually.TrueAsync(() => logs.Any(l => l.Count(ServerHandler, "Rejected incoming connection from") > 0),
            JoinAttemptTimeout, "a TLS node rejects the outsider's connection");
        await Eventually.TrueAsync(() => logOut.Lines.Any(l => l.Message.Contains("Tried to associate with unreachable remote address", StringComparison.Ordinal)),
            JoinAttemptTimeout, "the outsider sees its association with a seed node fail");
        foreach (var node in new[] { A, B })
        {
            var state = ClusterOf(node).State;
            Assert.DoesNotContain(state.Members, m => m.Address.Port == outsiderAddress.Port);
            Assert.Equal(2, state.Members.Count(m => m.Status == MemberStatus.Up));
        }
        Assert.DoesNotContain(ClusterOf(outsider).State.Members, m => m.Status == MemberStatus.Up);
        if (expectPinningFailure)
            Assert.Contains(logs.Append(logOut).SelectMany(l => l.Lines), l => l.Message.Contains("Certificate pinning failed", StringComparison.Ordinal));
    }

    private const string ServerHandler = "Akka.Remote.Transport.DotNetty.TcpServerHandler";
}
