using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Security;

/// <summary>
/// The keys that may sign client tokens, from every configured source: the HS256 secret, a PEM
/// file of public keys or certificates (RSA, EC), a JWKS file and a JWKS URL. Asymmetric sources
/// are reloaded without a restart (key rotation): files when they change (a watcher on their
/// directory, which also sees the symlink swap of a Kubernetes secret) and every
/// <c>jwks-refresh</c>, the URL every <c>jwks-refresh</c>; and at once (at most once per
/// <c>jwks-min-reload</c>) when a token names a key id the node does not know. A source that fails to reload keeps its last
/// keys (logged); one that fails at start stops the node.
/// </summary>
public sealed class SigningKeys : IDisposable
{
    private readonly AuthSettings _settings;
    private readonly ILogger _logger;
    private readonly HttpClient? _http;
    private readonly SymmetricSecurityKey? _secret;
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly Timer? _refresh;
    private readonly SemaphoreSlim _reloading = new(1, 1);
    private volatile IReadOnlyList<SecurityKey> _asymmetric = [];
    private int _reloadScheduled; // 1 while a background reload is scheduled and has not started reading
    private long _lastReload; // when the last read of the sources started (Environment.TickCount64); guarded by _reloading

    private SigningKeys(AuthSettings settings, ILogger logger, HttpMessageHandler? handler)
    {
        _settings = settings;
        _logger = logger;
        if (settings.Hs256Secret is { } secret) _secret = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret));
        if (settings.JwksUrl is not null) _http = handler is null ? new HttpClient { Timeout = settings.JwksTimeout } : new HttpClient(handler) { Timeout = settings.JwksTimeout };
        foreach (var file in new[] { settings.PublicKeysFile, settings.JwksFile })
        {
            if (file is null) continue;
            var full = Path.GetFullPath(file);
            var watcher = new FileSystemWatcher(Path.GetDirectoryName(full)!)
            {
                NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.CreationTime | NotifyFilters.Size,
                IncludeSubdirectories = false,
            };
            watcher.Changed += (_, _) => ReloadInBackground();
            watcher.Created += (_, _) => ReloadInBackground();
            watcher.Renamed += (_, _) => ReloadInBackground();
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }
        if (settings.PublicKeysFile is not null || settings.JwksFile is not null || settings.JwksUrl is not null)
            _refresh = new Timer(_ => ReloadInBackground(), null, settings.JwksRefresh, settings.JwksRefresh);
    }

    /// <summary>Loads every source once (a source that cannot be read throws: the node does not start without its keys).</summary>
    public static async Task<SigningKeys> LoadAsync(AuthSettings settings, ILogger logger, HttpMessageHandler? handler = null)
    {
        var keys = new SigningKeys(settings, logger, handler);
        keys._asymmetric = await keys.ReadAsymmetricAsync().ConfigureAwait(false);
        keys._lastReload = Environment.TickCount64;
        return keys;
    }

    /// <summary>Every key a token may be signed with now.</summary>
    public IReadOnlyList<SecurityKey> Current => _secret is null ? _asymmetric : [_secret, .. _asymmetric];

    /// <summary>The algorithms the configured keys can verify (HS256 only with a secret; RS256/ES256 only with public keys).</summary>
    public IReadOnlyList<string> Algorithms
    {
        get
        {
            var list = new List<string>();
            if (_secret is not null) list.Add(SecurityAlgorithms.HmacSha256);
            if (_settings.PublicKeysFile is not null || _settings.JwksFile is not null || _settings.JwksUrl is not null)
            {
                list.Add(SecurityAlgorithms.RsaSha256);
                list.Add(SecurityAlgorithms.EcdsaSha256);
            }
            return list;
        }
    }

    /// <summary>
    /// Re-reads the asymmetric sources for a token that names an unknown key: a reload that started
    /// after the caller asked serves it as is; otherwise the sources are read again, at most once per
    /// <c>jwks-min-reload</c> (a caller waits out the rest of that period rather than being refused,
    /// so a key that was just rotated in is always found). False when there is nothing to reload.
    /// </summary>
    public async Task<bool> ReloadAsync()
    {
        if (_settings.PublicKeysFile is null && _settings.JwksFile is null && _settings.JwksUrl is null) return false;
        var asked = Environment.TickCount64;
        // At worst a reload in progress, then this one after the minimum interval: each bounded by jwks-timeout.
        if (!await _reloading.WaitAsync(_settings.JwksTimeout * 2 + _settings.JwksMinReload).ConfigureAwait(false)) return false;
        try
        {
            if (_lastReload >= asked) return true;
            var wait = (long)_settings.JwksMinReload.TotalMilliseconds - (Environment.TickCount64 - _lastReload);
            if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait)).ConfigureAwait(false);
            await ReadIntoCurrentAsync().ConfigureAwait(false);
            return true;
        }
        finally
        {
            _reloading.Release();
        }
    }

    private async Task ReadIntoCurrentAsync()
    {
        _lastReload = Environment.TickCount64;
        try
        {
            _asymmetric = await ReadAsymmetricAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or HttpRequestException or TaskCanceledException or ArgumentException or CryptographicException or System.Text.Json.JsonException or FormatException)
        {
            _logger.LogWarning("Token signing keys not reloaded, the previous ones stay: {Problem}", e.Message);
        }
    }

    /// <summary>
    /// A file changed or the refresh period passed: reads the sources again soon (one reload at a time). A burst of watcher events (one write is often several, and the
    /// whole directory is watched so that a swapped symlink or a renamed file is seen) is one reload:
    /// a request while one is already scheduled and not yet started is folded into it.
    /// </summary>
    private void ReloadInBackground()
    {
        if (Interlocked.Exchange(ref _reloadScheduled, 1) == 1) return;
        _ = Task.Run(ReloadSoonAsync);
    }

    private async Task ReloadSoonAsync()
    {
        // A watcher fires while the file is still being written: give the writer a moment, then read.
        await Task.Delay(100).ConfigureAwait(false);
        await _reloading.WaitAsync().ConfigureAwait(false);
        Volatile.Write(ref _reloadScheduled, 0); // a change from now on schedules another read
        try
        {
            await ReadIntoCurrentAsync().ConfigureAwait(false);
        }
        finally
        {
            _reloading.Release();
        }
    }

    private async Task<IReadOnlyList<SecurityKey>> ReadAsymmetricAsync()
    {
        var keys = new List<SecurityKey>();
        if (_settings.PublicKeysFile is { } pem) keys.AddRange(ReadPem(await File.ReadAllTextAsync(pem).ConfigureAwait(false), pem));
        if (_settings.JwksFile is { } jwks) keys.AddRange(ReadJwks(await File.ReadAllTextAsync(jwks).ConfigureAwait(false), jwks));
        if (_settings.JwksUrl is { } url) keys.AddRange(ReadJwks(await _http!.GetStringAsync(url).ConfigureAwait(false), url));
        return keys;
    }

    /// <summary>Public keys of a PEM text: PUBLIC KEY (RSA or EC), RSA PUBLIC KEY, or CERTIFICATE blocks, in any number.</summary>
    public static IReadOnlyList<SecurityKey> ReadPem(string text, string source)
    {
        var keys = new List<SecurityKey>();
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label].ToString();
            var der = Convert.FromBase64String(rest[fields.Base64Data].ToString());
            rest = rest[fields.Location.End..];
            switch (label)
            {
                case "PUBLIC KEY":
                    keys.Add(PublicKey(der, source));
                    break;
                case "RSA PUBLIC KEY":
                    var rsa = RSA.Create();
                    rsa.ImportRSAPublicKey(der, out _);
                    keys.Add(new RsaSecurityKey(rsa));
                    break;
                case "CERTIFICATE":
                    var cert = X509CertificateLoader.LoadCertificate(der);
                    keys.Add(cert.GetRSAPublicKey() is { } r ? new RsaSecurityKey(r) : new ECDsaSecurityKey(cert.GetECDsaPublicKey() ?? throw new ArgumentException($"{source}: a certificate without an RSA or EC key")));
                    break;
                default:
                    throw new ArgumentException($"{source}: unexpected PEM block '{label}' (public keys or certificates only, never private keys)");
            }
        }
        if (keys.Count == 0) throw new ArgumentException($"{source}: no PEM public key in it");
        return keys;
    }

    private static SecurityKey PublicKey(byte[] der, string source)
    {
        try
        {
            var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(der, out _);
            return new RsaSecurityKey(rsa);
        }
        catch (CryptographicException)
        {
            var ec = ECDsa.Create();
            try { ec.ImportSubjectPublicKeyInfo(der, out _); }
            catch (CryptographicException e) { throw new ArgumentException($"{source}: a PUBLIC KEY that is neither RSA nor EC ({e.Message})"); }
            return new ECDsaSecurityKey(ec);
        }
    }

    /// <summary>The RSA and EC keys of a JWKS document (symmetric "oct" keys are refused: a published document must not hold secrets).</summary>
    public static IReadOnlyList<SecurityKey> ReadJwks(string json, string source)
    {
        var set = new JsonWebKeySet(json);
        var keys = new List<SecurityKey>();
        foreach (var key in set.Keys)
        {
            if (key.Kty is JsonWebAlgorithmsKeyTypes.RSA or JsonWebAlgorithmsKeyTypes.EllipticCurve && key.Use is null or "sig") keys.Add(key);
        }
        if (keys.Count == 0) throw new ArgumentException($"{source}: no RSA or EC signing key in the JWKS document");
        return keys;
    }

    public void Dispose()
    {
        foreach (var w in _watchers) w.Dispose();
        _refresh?.Dispose();
        _http?.Dispose();
    }
}
