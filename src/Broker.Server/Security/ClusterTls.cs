using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Remote.Hosting;
using Akka.Remote.Transport.DotNetty;
using Broker.Server.Configuration;

namespace Broker.Server.Security;

/// <summary>
/// TLS between nodes (Akka.Remote over DotNetty, <see cref="ClusterTlsSettings"/>): the node's
/// certificate, loaded and checked at start, and how Akka.Remote uses it. Both sides of a
/// connection present their certificate and check the other's (mutual authentication); with
/// <see cref="PeerValidation.SameCertificate"/> a peer must present this node's certificate itself,
/// with <see cref="PeerValidation.Chain"/> one that chains to a CA this machine trusts. The host
/// name is not checked (nodes are reached by IP address as often as by name).
/// </summary>
public sealed class ClusterTls
{
    private ClusterTls(X509Certificate2? certificate, PeerValidation validation)
    {
        Certificate = certificate;
        Validation = validation;
    }

    /// <summary>The certificate this node presents; null: Akka.Remote runs over plain TCP.</summary>
    public X509Certificate2? Certificate { get; }

    public PeerValidation Validation { get; }

    public bool Enabled => Certificate is not null;

    /// <summary>Loads the certificate; one that cannot be loaded or has no private key stops the node (<see cref="StartupException"/>).</summary>
    public static ClusterTls Load(ClusterTlsSettings settings)
    {
        if (settings.PfxFile is not { } pfx) return new ClusterTls(null, settings.PeerValidation);
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(pfx, settings.PfxPassword);
        }
        catch (Exception e) when (e is IOException or CryptographicException or UnauthorizedAccessException)
        {
            throw new StartupException($"cannot load the certificate of {ClusterTlsSettings.PfxFileKey} ({pfx}): {e.Message.Split('\n')[0].Trim()}", e);
        }
        if (!certificate.HasPrivateKey)
            throw new StartupException($"the certificate of {ClusterTlsSettings.PfxFileKey} ({pfx}) has no private key: a node presents it to the others, it needs one");
        return new ClusterTls(certificate, settings.PeerValidation);
    }

    /// <summary>Sets TLS on <paramref name="remote"/> when it is on; otherwise leaves Akka's transport as it is.</summary>
    public RemoteOptions Apply(RemoteOptions remote)
    {
        if (Certificate is null) return remote;
        remote.EnableSsl = true;
        remote.Ssl = new SslOptions
        {
            X509Certificate = Certificate,
            SuppressValidation = false,
            RequireMutualAuthentication = true,
            ValidateCertificateHostname = false,
            // Null: Akka's own chain validation against the machine's trusted CAs.
            CustomValidator = Validation == PeerValidation.SameCertificate ? CertificateValidation.PinnedCertificate(Certificate.Thumbprint) : null,
        };
        return remote;
    }
}
