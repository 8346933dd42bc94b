using System.Security.Cryptography.X509Certificates;
using Broker.Server.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Broker.Server.Security;

/// <summary>
/// TLS on the public listener (wss:// and https://), terminated by Kestrel: the certificate of
/// <see cref="TlsSettings"/> (PEM certificate and key, or PKCS#12), loaded at start. Nothing set: plain HTTP.
/// </summary>
public sealed record TlsSetup(X509Certificate2? Certificate)
{
    public bool Enabled => Certificate is not null;

    /// <summary>Loads the certificate; one that cannot be loaded stops the node (<see cref="StartupException"/>).</summary>
    public static TlsSetup Load(TlsSettings settings)
    {
        try
        {
            if (settings.PfxFile is { } pfx) return new TlsSetup(X509CertificateLoader.LoadPkcs12FromFile(pfx, settings.PfxPassword));
            if (settings.CertFile is { } cert && settings.KeyFile is { } key) return new TlsSetup(X509Certificate2.CreateFromPemFile(cert, key));
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            var files = settings.PfxFile ?? $"{settings.CertFile}, {settings.KeyFile}";
            throw new StartupException($"cannot load the TLS certificate of broker.http.tls ({files}): {e.Message.Split('\n')[0].Trim()}", e);
        }
        return new TlsSetup((X509Certificate2?)null);
    }

    public ListenOptions Apply(ListenOptions options)
    {
        if (Certificate is not null) options.UseHttps(Certificate);
        return options;
    }
}
