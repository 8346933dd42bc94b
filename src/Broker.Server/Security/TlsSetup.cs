using System.Security.Cryptography.X509Certificates;
using Akka.Configuration;
using Broker.Core.Security;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Broker.Server.Security;

/// <summary>
/// TLS on the public listener (wss:// and https://), terminated by Kestrel: <c>broker.http.tls</c>
/// with a certificate and key in PEM files (<c>cert-file</c>, <c>key-file</c>) or a PKCS#12 file
/// (<c>pfx-file</c>, <c>pfx-password</c> or <c>pfx-password-file</c>). Nothing set: plain HTTP.
/// </summary>
public sealed record TlsSetup(X509Certificate2? Certificate)
{
    public bool Enabled => Certificate is not null;

    public static TlsSetup FromConfig(Config c)
    {
        string Opt(string key) => c.GetString(key, "").Trim();
        var cert = Opt("broker.http.tls.cert-file");
        var key = Opt("broker.http.tls.key-file");
        var pfx = Opt("broker.http.tls.pfx-file");
        try
        {
            if (pfx.Length > 0)
            {
                var password = Opt("broker.http.tls.pfx-password") is { Length: > 0 } p ? p
                    : Opt("broker.http.tls.pfx-password-file") is { Length: > 0 } f ? SecretFile.Read(f, "broker.http.tls.pfx-password-file") : null;
                return new TlsSetup(X509CertificateLoader.LoadPkcs12FromFile(pfx, password));
            }
            if (cert.Length > 0 || key.Length > 0)
            {
                if (cert.Length == 0 || key.Length == 0) throw new ConfigurationException("broker.http.tls: cert-file and key-file go together");
                return new TlsSetup(X509Certificate2.CreateFromPemFile(cert, key));
            }
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"broker.http.tls: cannot load the certificate: {e.Message}");
        }
        return new TlsSetup((X509Certificate2?)null);
    }

    public ListenOptions Apply(ListenOptions options)
    {
        if (Certificate is not null) options.UseHttps(Certificate);
        return options;
    }
}
