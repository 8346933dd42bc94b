using Broker.Core.Settings;

namespace Broker.Core.Sessions;

/// <summary>Settings of durable sessions (HOCON <c>broker.sessions</c>).</summary>
public sealed record SessionSettings
{
    /// <summary>A session with no connection attached for this long is deleted.</summary>
    public required TimeSpan ExpireAfter { get; init; }

    /// <summary>A session with no connection attached leaves memory after this long (its state stays stored).</summary>
    public required TimeSpan PassivateAfter { get; init; }

    /// <summary>How often the session sweep checks every stored session for expiry.</summary>
    public required TimeSpan SweepInterval { get; init; }

    /// <summary>Stored sessions the sweep checks per second.</summary>
    public required int SweepRate { get; init; }

    /// <summary>Stored sessions the sweep checks at once (each check loads a session from the store).</summary>
    public required int SweepParallelism { get; init; }

    /// <summary>A snapshot is saved every this many events (older events and snapshots are then deleted); 0: never.</summary>
    public required int SnapshotEvery { get; init; }

    /// <summary>How long a connection waits for the session store before answering <c>unavailable</c>.</summary>
    public required TimeSpan RequestTimeout { get; init; }

    /// <summary>Shards of the session region (fixed for the life of a cluster).</summary>
    public required int Shards { get; init; }

    /// <summary>The clock of the stored connection facts and of expiry (not configured: tests replace it).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Binds and validates <c>broker.sessions</c>.</summary>
    public static SessionSettings Bind(SettingsReader r) => new()
    {
        ExpireAfter = r.Duration("broker.sessions.expire-after", TimeSpan.FromSeconds(1)),
        PassivateAfter = r.Duration("broker.sessions.passivate-after", TimeSpan.FromMilliseconds(100)),
        SweepInterval = r.Duration("broker.sessions.sweep-interval", TimeSpan.FromSeconds(1)),
        SweepRate = r.Int("broker.sessions.sweep-rate", 1),
        SweepParallelism = r.Int("broker.sessions.sweep-parallelism", 1),
        SnapshotEvery = r.Int("broker.sessions.snapshot-every", 0),
        RequestTimeout = r.Duration("broker.sessions.request-timeout"),
        Shards = r.Int("broker.sessions.shards", 1),
    };
}
