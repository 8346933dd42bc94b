using System.Threading.RateLimiting;

namespace Broker.Core.Security;

/// <summary>
/// Admission control of WebSocket connections on one node: at most <c>connections-per-node</c>
/// open, <c>connections-per-ip</c> per remote address, <c>connections-per-subject</c> per token
/// subject, and <c>connections-per-second</c> new ones. A refused upgrade gets HTTP 503 with
/// <c>Retry-After</c>; a subject over its cap found only at the first-frame <c>auth</c> is closed
/// with 1013 <c>too_many_connections</c>. Leases are held for the life of the connection.
/// </summary>
public sealed class Admission : IDisposable
{
    private readonly LimitSettings _limits;
    private readonly ConcurrencyLimiter? _node;
    private readonly PartitionedRateLimiter<string>? _perIp;
    private readonly PartitionedRateLimiter<string>? _perSubject;
    private readonly TokenBucketRateLimiter? _rate;

    public Admission(LimitSettings limits)
    {
        _limits = limits;
        if (limits.ConnectionsPerNode > 0) _node = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = limits.ConnectionsPerNode, QueueLimit = 0 });
        _perIp = PerKey(limits.ConnectionsPerIp);
        _perSubject = PerKey(limits.ConnectionsPerSubject);
        if (limits.ConnectionsPerSecond > 0) _rate = new TokenBucketRateLimiter(Quotas.Bucket(limits.ConnectionsPerSecond));
    }

    private static PartitionedRateLimiter<string>? PerKey(int permits) => permits <= 0 ? null
        : PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetConcurrencyLimiter(key, _ => new ConcurrencyLimiterOptions { PermitLimit = permits, QueueLimit = 0 }));

    /// <summary>Admits a new connection from <paramref name="remoteAddress"/> (node cap, per-address cap, rate), or says why not and when to retry.</summary>
    public AdmissionResult AdmitConnection(string remoteAddress)
    {
        var leases = new Leases();
        if (_rate is not null)
        {
            using var lease = _rate.AttemptAcquire();
            if (!lease.IsAcquired)
                return Refuse(leases, "too many new connections per second on this node", lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1));
        }
        if (_node is not null && !leases.Take(_node.AttemptAcquire()))
            return Refuse(leases, $"this node has {_limits.ConnectionsPerNode} connections (broker.limits.connections-per-node)", _limits.ConnectionRetryAfter);
        if (_perIp is not null && !leases.Take(_perIp.AttemptAcquire(remoteAddress)))
            return Refuse(leases, $"{_limits.ConnectionsPerIp} connections from {remoteAddress} already (broker.limits.connections-per-ip)", _limits.ConnectionRetryAfter);
        return new AdmissionResult(leases, null, TimeSpan.Zero);
    }

    /// <summary>Takes a per-subject connection permit into <paramref name="leases"/>; false when the subject has as many as allowed.</summary>
    public bool AdmitSubject(Leases leases, string subject) => _perSubject is null || leases.Take(_perSubject.AttemptAcquire(subject));

    public string SubjectCapMessage(string subject) => $"{subject} has {_limits.ConnectionsPerSubject} connections on this node already (broker.limits.connections-per-subject)";

    public TimeSpan RetryAfter => _limits.ConnectionRetryAfter;

    private static AdmissionResult Refuse(Leases leases, string why, TimeSpan retryAfter)
    {
        leases.Dispose();
        return new AdmissionResult(null, why, retryAfter);
    }

    public void Dispose()
    {
        _node?.Dispose();
        _perIp?.Dispose();
        _perSubject?.Dispose();
        _rate?.Dispose();
    }
}

/// <summary>An admitted connection's leases (or why it was refused and when to retry).</summary>
public sealed record AdmissionResult(Leases? Leases, string? Refusal, TimeSpan RetryAfter);

/// <summary>The permits a connection holds (node, address, subject, session); released together when it ends.</summary>
public sealed class Leases : IDisposable
{
    private readonly List<IDisposable> _held = [];
    private bool _disposed;

    public bool Take(RateLimitLease lease)
    {
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            return false;
        }
        Add(lease);
        return true;
    }

    public void Add(IDisposable lease)
    {
        lock (_held)
        {
            if (_disposed) lease.Dispose();
            else _held.Add(lease);
        }
    }

    public void Dispose()
    {
        lock (_held)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var l in _held) l.Dispose();
            _held.Clear();
        }
    }
}
