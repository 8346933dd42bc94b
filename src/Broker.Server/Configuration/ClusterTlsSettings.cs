using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>Which certificates of other nodes a node accepts on Akka.Remote (<c>broker.cluster.tls.peer-validation</c>).</summary>
public enum PeerValidation
{
    /// <summary>Exactly this node's own certificate (one certificate shared by every node; self-signed is fine).</summary>
    SameCertificate,

    /// <summary>Any certificate that chains to a certification authority this machine trusts (per-node certificates of an internal CA).</summary>
    Chain,
}

/// <summary>
/// TLS between nodes (HOCON <c>broker.cluster.tls</c>): the PKCS#12 file a node presents to the
/// others and how it checks theirs (both sides present one: mutual authentication). No file: plain TCP.
/// </summary>
public sealed record ClusterTlsSettings
{
    public const string PfxFileKey = "broker.cluster.tls.pfx-file";
    public const string PasswordFileKey = "broker.cluster.tls.pfx-password-file";

    /// <summary>PKCS#12 file (certificate and private key), absolute; null: Akka.Remote runs over plain TCP.</summary>
    public required string? PfxFile { get; init; }

    /// <summary>The password of <see cref="PfxFile"/>, read from <c>pfx-password-file</c>; null: none. Never logged.</summary>
    public required string? PfxPassword { get; init; }

    /// <summary>Which certificates of other nodes are accepted.</summary>
    public required PeerValidation PeerValidation { get; init; }

    /// <summary>Whether Akka.Remote runs over TLS (addresses are then <c>akka.ssl.tcp://</c>).</summary>
    public bool Enabled => PfxFile is not null;

    /// <summary>Binds and validates <c>broker.cluster.tls</c> (reads the password file; the certificate is loaded at start, see <see cref="Security.ClusterTls"/>).</summary>
    public static ClusterTlsSettings Bind(SettingsReader r)
    {
        var pfx = r.OptionalFilePath(PfxFileKey);
        var passwordFile = r.String(PasswordFileKey).Trim();
        var validation = r.Choice("broker.cluster.tls.peer-validation",
            [("same-certificate", PeerValidation.SameCertificate), ("chain", PeerValidation.Chain)]);
        return new ClusterTlsSettings
        {
            PfxFile = pfx,
            PfxPassword = pfx is not null && passwordFile.Length > 0
                ? r.ReadSecret(PasswordFileKey, passwordFile, "the password of " + PfxFileKey)
                : null,
            PeerValidation = validation,
        };
    }

    /// <summary>The password is a secret: it is left out of the record's text (logs, exceptions).</summary>
    public override string ToString() =>
        $"{nameof(ClusterTlsSettings)} {{ PfxFile = {PfxFile}, PfxPassword = {(PfxPassword is null ? "none" : "***")}, PeerValidation = {PeerValidation} }}";
}
