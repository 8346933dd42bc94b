using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests.Security;

/// <summary>wss:// with a self-signed certificate made in the test (PEM certificate and key files given to Kestrel).</summary>
public sealed class TlsTests
{
    [Fact]
    public async Task A_client_that_trusts_the_certificate_speaks_the_protocol_over_wss_and_one_that_does_not_is_refused()
    {
        var dir = Directory.CreateTempSubdirectory("broker-tls-").FullName;
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certFile = Path.Combine(dir, "cert.pem");
        var keyFile = Path.Combine(dir, "key.pem");
        await File.WriteAllTextAsync(certFile, cert.ExportCertificatePem());
        await File.WriteAllTextAsync(keyFile, rsa.ExportPkcs8PrivateKeyPem());
        try
        {
            await using var broker = await TestBroker.StartAsync(new Dictionary<string, string>
            {
                ["broker.http.tls.cert-file"] = certFile,
                ["broker.http.tls.key-file"] = keyFile,
            });
            Assert.Equal("wss", broker.WsUri.Scheme);
            await using var client = await WsClient.ConnectAsync(broker.WsUri, configure: o =>
                o.RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == cert.GetCertHashString());
            await client.SubscribeAsync("tls.topic", "s");
            var (_, message) = await client.PublishToSelfAsync("tls.topic", new { secure = true }, "p");
            Assert.True((bool)message["data"]!["secure"]!);

            await Assert.ThrowsAsync<WebSocketException>(() => WsClient.ConnectAsync(broker.WsUri));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
