using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>What a node does on SIGTERM (HOCON <c>broker.shutdown-deadline</c>, <c>broker.shutdown-leave-timeout</c>).</summary>
public sealed record ShutdownSettings
{
    /// <summary>Time the node gives its connections to close (1001) before it hands its shards off.</summary>
    public required TimeSpan Deadline { get; init; }

    /// <summary>Time after <see cref="Deadline"/> for the shard hand-off and the cluster leave before the host gives up.</summary>
    public required TimeSpan LeaveTimeout { get; init; }

    /// <summary>Binds and validates the shutdown keys.</summary>
    public static ShutdownSettings Bind(SettingsReader r) => new()
    {
        Deadline = r.Duration("broker.shutdown-deadline", TimeSpan.Zero),
        LeaveTimeout = r.Duration("broker.shutdown-leave-timeout"),
    };
}
