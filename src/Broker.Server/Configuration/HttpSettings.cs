using System.Net;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>Where the dashboard, /api/*, /metrics and the detailed /readyz body are served (<c>broker.http.internal-endpoints</c>).</summary>
public enum InternalEndpoints
{
    /// <summary>On the public listener too (the quick start).</summary>
    Public,
    /// <summary>On the admin listener only; the public /readyz answers just its status.</summary>
    Admin,
}

/// <summary>The public listener: WebSockets (/ws), HTTP publish, health, metrics and the dashboard (HOCON <c>broker.http</c>).</summary>
public sealed record HttpSettings
{
    /// <summary>The host as configured (for messages).</summary>
    public required string Host { get; init; }

    /// <summary>The address Kestrel binds.</summary>
    public required IPAddress Address { get; init; }

    /// <summary>The port; 0 picks a free one.</summary>
    public required int Port { get; init; }

    /// <summary>Whether the dashboard (/, /api/cluster, /api/topics) is served.</summary>
    public required bool Dashboard { get; init; }

    /// <summary>Which listener serves the dashboard, /api/*, /metrics and the detailed /readyz.</summary>
    public required InternalEndpoints InternalEndpoints { get; init; }

    /// <summary>TLS of this listener (<c>broker.http.tls</c>).</summary>
    public required TlsSettings Tls { get; init; }

    /// <summary>Binds and validates <c>broker.http</c>.</summary>
    public static HttpSettings Bind(SettingsReader r) => new()
    {
        Host = r.String("broker.http.host").Trim(),
        Address = ListenAddress.Resolve(r, "broker.http.host"),
        Port = r.Port("broker.http.port"),
        Dashboard = r.Switch("broker.http.dashboard"),
        InternalEndpoints = r.Choice("broker.http.internal-endpoints", [("public", InternalEndpoints.Public), ("admin", InternalEndpoints.Admin)]),
        Tls = TlsSettings.Bind(r),
    };
}

/// <summary>
/// TLS on the public listener (HOCON <c>broker.http.tls</c>): a certificate and its key in PEM files,
/// or a PKCS#12 file with its password. Paths are absolute; nothing set: plain HTTP.
/// </summary>
public sealed record TlsSettings
{
    /// <summary>PEM certificate (chain); with <see cref="KeyFile"/>.</summary>
    public required string? CertFile { get; init; }

    /// <summary>PEM private key of <see cref="CertFile"/>.</summary>
    public required string? KeyFile { get; init; }

    /// <summary>PKCS#12 file (certificate and key); used instead of the PEM files when set.</summary>
    public required string? PfxFile { get; init; }

    /// <summary>The password of <see cref="PfxFile"/> (<c>pfx-password</c>, or read from <c>pfx-password-file</c>); null: none.</summary>
    public required string? PfxPassword { get; init; }

    /// <summary>Whether the listener serves TLS.</summary>
    public bool Enabled => PfxFile is not null || CertFile is not null;

    /// <summary>Binds and validates <c>broker.http.tls</c> (reads the password file; the certificate is loaded at start, see <see cref="Security.TlsSetup"/>).</summary>
    public static TlsSettings Bind(SettingsReader r)
    {
        var cert = r.OptionalFilePath("broker.http.tls.cert-file");
        var key = r.OptionalFilePath("broker.http.tls.key-file");
        var pfx = r.OptionalFilePath("broker.http.tls.pfx-file");
        var password = r.String("broker.http.tls.pfx-password") is { Length: > 0 } p ? p : null;
        const string passwordFileKey = "broker.http.tls.pfx-password-file";
        var passwordFile = r.String(passwordFileKey).Trim();
        var passwordFromFile = pfx is not null && password is null && passwordFile.Length > 0
            ? r.ReadSecret(passwordFileKey, passwordFile, "the password of broker.http.tls.pfx-file")
            : null;
        if (pfx is null && (cert is null) != (key is null))
        {
            var missing = cert is null ? "broker.http.tls.cert-file" : "broker.http.tls.key-file";
            throw r.Invalid(missing, "", "a PEM file: cert-file and key-file go together (env BROKER_TLS_CERT_FILE, BROKER_TLS_KEY_FILE)");
        }
        return new TlsSettings
        {
            CertFile = pfx is null ? cert : null,
            KeyFile = pfx is null ? key : null,
            PfxFile = pfx,
            PfxPassword = password ?? passwordFromFile,
        };
    }
}
