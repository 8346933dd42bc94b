using System.Diagnostics;

namespace Broker.Core.Security;

/// <summary>
/// A token bucket refilled from the clock when it is used: no timer, no allocation, no lock. For a
/// connection's own rates, which only its request owner checks (one thread at a time). A
/// connection that sends nothing costs three longs; System.Threading.RateLimiting's auto-replenished
/// bucket needs a timer per limiter, which at 10,000 connections means 30,000 timers ticking.
/// </summary>
internal sealed class TokenBucket(long perSecond)
{
    private readonly double _perTick = (double)perSecond / Stopwatch.Frequency;
    private double _tokens = perSecond;
    private long _refilledAt = Stopwatch.GetTimestamp();

    /// <summary>Takes <paramref name="permits"/> when there are enough; else how long until there will be.</summary>
    public bool TryTake(long permits, out TimeSpan retryAfter)
    {
        var now = Stopwatch.GetTimestamp();
        _tokens = Math.Min(perSecond, _tokens + (now - _refilledAt) * _perTick); // at most one second's worth saved up
        _refilledAt = now;
        if (_tokens >= permits || (permits > perSecond && _tokens >= perSecond)) // a request larger than a second's worth passes on a full bucket
        {
            _tokens -= permits;
            retryAfter = TimeSpan.Zero;
            return true;
        }
        retryAfter = TimeSpan.FromSeconds((Math.Min(permits, perSecond) - _tokens) / perSecond);
        return false;
    }
}
