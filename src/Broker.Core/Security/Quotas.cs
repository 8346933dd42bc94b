using System.Threading.RateLimiting;
using Broker.Protocol;

namespace Broker.Core.Security;

/// <summary>
/// The node's quotas (System.Threading.RateLimiting), shared by every connection of the node:
/// publishes and publish bytes per second per subject, topic creations per subject, durable
/// sessions per subject; and the factory of each connection's own limiters
/// (<see cref="ForConnection"/>). Subjects are <see cref="ClientIdentity.Partition"/>: the token's
/// subject, or the remote address of an anonymous client. A limit of 0 is off. Over a rate the
/// request gets <c>rate_limited</c> with <c>retry_after_ms</c> and the connection stays open.
/// </summary>
public sealed class Quotas : IDisposable
{
    private readonly LimitSettings _limits;
    private readonly PartitionedRateLimiter<string>? _subjectPublishes;
    private readonly PartitionedRateLimiter<string>? _subjectBytes;
    private readonly PartitionedRateLimiter<string>? _creations;
    private readonly PartitionedRateLimiter<string>? _sessions;

    public Quotas(LimitSettings limits)
    {
        _limits = limits;
        _subjectPublishes = PerSecond(limits.SubjectPublishesPerSecond);
        _subjectBytes = PerSecond(limits.SubjectPublishBytesPerSecond);
        if (limits.TopicCreationsPerMinute > 0)
        {
            _creations = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = limits.TopicCreationsPerMinute,
                TokensPerPeriod = Math.Max(1, limits.TopicCreationsPerMinute / 60),
                ReplenishmentPeriod = TimeSpan.FromSeconds(Math.Max(1, 60.0 / limits.TopicCreationsPerMinute)),
                QueueLimit = 0,
            }));
        }
        if (limits.SessionsPerSubject > 0)
        {
            _sessions = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetConcurrencyLimiter(key, _ => new ConcurrencyLimiterOptions
            {
                PermitLimit = limits.SessionsPerSubject,
                QueueLimit = 0,
            }));
        }
    }

    public LimitSettings Limits => _limits;

    /// <summary>A token bucket per partition: <paramref name="perSecond"/> permits a second, at most one second's worth saved up.</summary>
    private static PartitionedRateLimiter<string>? PerSecond(long perSecond)
    {
        if (perSecond <= 0) return null;
        var limit = (int)Math.Min(int.MaxValue, perSecond);
        return PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => Bucket(limit)));
    }

    /// <summary>
    /// A bucket that refills <paramref name="perSecond"/> tokens a second in steps of about 100 ms
    /// (a tenth of the rate per step; below 10 a second one token per 1/rate s), so any rate is exact.
    /// </summary>
    internal static TokenBucketRateLimiterOptions Bucket(int perSecond)
    {
        var perStep = Math.Max(1, perSecond / 10);
        return new()
        {
            TokenLimit = perSecond,
            TokensPerPeriod = perStep,
            ReplenishmentPeriod = TimeSpan.FromTicks(TimeSpan.TicksPerSecond * perStep / perSecond),
            QueueLimit = 0,
            AutoReplenishment = true,
        };
    }

    /// <summary>The limiters of one connection (its own publish, byte and subscribe rates; the subject's on top).</summary>
    public ConnectionQuota ForConnection() => new(this);

    /// <summary>Null when one more publish of <paramref name="bytes"/> is within the subject's rates, else the error.</summary>
    internal ProtocolError? SubjectPublish(string partition, int bytes) =>
        Take(_subjectPublishes, partition, 1, "publishes of this subject")
        ?? Take(_subjectBytes, partition, bytes, "publish bytes of this subject");

    /// <summary>Null when the subject may create one more topic now, else the error.</summary>
    public ProtocolError? TopicCreation(string partition) => Take(_creations, partition, 1, "topic creations of this subject");

    /// <summary>
    /// A lease for one more durable-session connection of the subject on this node (dispose it when
    /// the connection ends), or null with the error when the subject has as many as allowed.
    /// </summary>
    public IDisposable? Session(string partition, out ProtocolError? refused)
    {
        refused = null;
        if (_sessions is null) return NoLease.Instance;
        var lease = _sessions.AttemptAcquire(partition);
        if (lease.IsAcquired) return lease;
        lease.Dispose();
        refused = new ProtocolError(ErrorCodes.RateLimited, $"at most {_limits.SessionsPerSubject} durable-session connections per subject on this node", 1000);
        return null;
    }

    internal static ProtocolError? Take(RateLimiter? limiter, int permits, string what) =>
        limiter is null ? null : Refusal(limiter.AttemptAcquire(permits), what);

    private static ProtocolError? Take(PartitionedRateLimiter<string>? limiter, string key, int permits, string what) =>
        limiter is null ? null : Refusal(limiter.AttemptAcquire(key, permits), what);

    private static ProtocolError? Refusal(RateLimitLease lease, string what)
    {
        using (lease)
        {
            if (lease.IsAcquired) return null;
            var retry = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? (long)Math.Ceiling(after.TotalMilliseconds) : 1000;
            return new ProtocolError(ErrorCodes.RateLimited, $"too many {what}: retry in {Math.Max(1, retry)} ms", Math.Max(1, retry));
        }
    }

    public void Dispose()
    {
        _subjectPublishes?.Dispose();
        _subjectBytes?.Dispose();
        _creations?.Dispose();
        _sessions?.Dispose();
    }

    private sealed class NoLease : IDisposable
    {
        public static readonly NoLease Instance = new();
        public void Dispose() { }
    }
}

/// <summary>
/// One connection's own rates: publishes, publish bytes and subscribes per second (and the subject's,
/// through the node's <see cref="Quotas"/>). Each bucket is made when the connection first uses it:
/// a bucket starts full and holds at most one second's worth, so one made later is the bucket the
/// connection would have had; an idle connection holds none.
/// </summary>
public sealed class ConnectionQuota : IDisposable
{
    private readonly Quotas _node;
    private TokenBucket? _publishes;
    private TokenBucket? _bytes;
    private TokenBucket? _subscribes;

    internal ConnectionQuota(Quotas node)
    {
        _node = node;
    }

    /// <summary>Null when one more publish of <paramref name="bytes"/> bytes is within this connection's and its subject's rates.</summary>
    public ProtocolError? Publish(string partition, int bytes)
    {
        var l = _node.Limits;
        return Take(ref _publishes, l.PublishesPerSecond, 1, "publishes on this connection")
            ?? Take(ref _bytes, l.PublishBytesPerSecond, bytes, "publish bytes on this connection")
            ?? _node.SubjectPublish(partition, bytes);
    }

    public ProtocolError? Subscribe() => Take(ref _subscribes, _node.Limits.SubscribesPerSecond, 1, "subscribes on this connection");

    /// <summary>Takes from the bucket of a limit (made at its first use); a limit of 0 is off.</summary>
    private static ProtocolError? Take(ref TokenBucket? bucket, long perSecond, long permits, string what)
    {
        if (perSecond <= 0) return null;
        bucket ??= new TokenBucket(perSecond);
        if (bucket.TryTake(permits, out var after)) return null;
        var retry = Math.Max(1, (long)Math.Ceiling(after.TotalMilliseconds));
        return new ProtocolError(ErrorCodes.RateLimited, $"too many {what}: retry in {retry} ms", retry);
    }

    public void Dispose()
    {
    }
}
