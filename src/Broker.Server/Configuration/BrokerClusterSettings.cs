using Broker.Core.Settings;
using Broker.Server.Hosting;

namespace Broker.Server.Configuration;

/// <summary>This node's place in the Akka.NET cluster (HOCON <c>broker.cluster</c>).</summary>
public sealed record BrokerClusterSettings
{
    /// <summary>The split-brain resolver strategies a node may use.</summary>
    public static readonly IReadOnlyList<string> Strategies = ["keep-majority", "keep-oldest", "static-quorum", "down-all"];

    /// <summary>Akka.Remote host name: the address other nodes reach this one at.</summary>
    public required string Hostname { get; init; }

    /// <summary>Akka.Remote port; 0 picks a free one (a cluster of one).</summary>
    public required int Port { get; init; }

    /// <summary>TLS between nodes (<c>broker.cluster.tls</c>).</summary>
    public required ClusterTlsSettings Tls { get; init; }

    /// <summary>Seed node addresses (<c>akka.tcp://broker@host:port</c>, <c>akka.ssl.tcp://</c> with TLS); none: this node forms a cluster of one.</summary>
    public required IReadOnlyList<string> SeedNodes { get; init; }

    /// <summary>Without seed nodes: whether the node forms a cluster of one at start (else it waits to be told to join one).</summary>
    public required bool SelfJoin { get; init; }

    /// <summary>The split-brain resolver's strategy, one of <see cref="Strategies"/>.</summary>
    public required string SplitBrainStrategy { get; init; }

    /// <summary>Nodes a side needs to survive a split with <c>static-quorum</c> (0 with other strategies).</summary>
    public required int QuorumSize { get; init; }

    /// <summary>How long membership must be stable before the resolver downs unreachable nodes.</summary>
    public required TimeSpan StableAfter { get; init; }

    /// <summary>While reachability keeps changing for stable-after plus this long, every node downs itself.</summary>
    public required TimeSpan DownAllWhenUnstable { get; init; }

    /// <summary>Shards of the topic region (fixed for the life of a cluster).</summary>
    public required int TopicShards { get; init; }

    /// <summary>Idle topic actors stop after this long.</summary>
    public required TimeSpan PassivateIdleAfter { get; init; }

    /// <summary>Binds and validates <c>broker.cluster</c>.</summary>
    public static BrokerClusterSettings Bind(SettingsReader r)
    {
        const string strategyKey = "broker.cluster.split-brain-resolver.active-strategy";
        const string quorumKey = "broker.cluster.split-brain-resolver.quorum-size";
        var strategy = r.Choice(strategyKey, [.. Strategies.Select(s => (s, s))]);
        var quorum = r.Int(quorumKey, 0);
        if (strategy == "static-quorum" && quorum < 1)
            throw r.Invalid(quorumKey, r.Raw(quorumKey), "at least 1 with the static-quorum strategy (the nodes a side needs to stay up)");
        var tls = ClusterTlsSettings.Bind(r);
        // Akka's own switch would change the addresses' scheme behind the seed check and give the
        // transport no certificate the broker loaded and checked: one way to turn TLS on.
        const string akkaSsl = "akka.remote.dot-netty.tcp.enable-ssl";
        if (r.Raw(akkaSsl)?.Trim().ToLowerInvariant() is "on" or "true" or "yes")
            throw r.Invalid(akkaSsl, r.Raw(akkaSsl), $"not set: TLS between nodes is {ClusterTlsSettings.PfxFileKey} (env BROKER_CLUSTER_TLS_PFX_FILE)");
        return new BrokerClusterSettings
        {
            Hostname = r.NonEmpty("broker.cluster.hostname", "the host name or IP address other nodes reach this node at"),
            Port = r.Port("broker.cluster.port"),
            Tls = tls,
            SeedNodes = Seeds(r, BrokerConfig.SeedsKey, AkkaSetup.Protocol(tls.Enabled)),
            SelfJoin = r.Switch("broker.cluster.self-join"),
            SplitBrainStrategy = strategy,
            QuorumSize = quorum,
            StableAfter = r.Duration("broker.cluster.split-brain-resolver.stable-after"),
            DownAllWhenUnstable = r.Duration("broker.cluster.split-brain-resolver.down-all-when-unstable"),
            TopicShards = r.Int("broker.cluster.topic-shards", 1),
            PassivateIdleAfter = r.Duration("broker.cluster.passivate-idle-after"),
        };
    }

    /// <summary>
    /// Seed addresses must be Akka.Remote addresses of this actor system over this node's transport:
    /// <c>akka.tcp://broker@host:port</c>, or <c>akka.ssl.tcp://</c> with TLS (<paramref name="protocol"/>).
    /// </summary>
    private static string[] Seeds(SettingsReader r, string key, string protocol)
    {
        var seeds = r.StringList(key);
        foreach (var seed in seeds)
        {
            if (!Uri.TryCreate(seed.TrimEnd('/'), UriKind.Absolute, out var uri) || uri.Scheme != protocol
                || uri.UserInfo != AkkaSetup.SystemName || uri.Host.Length == 0 || uri.IsDefaultPort || uri.Port is < 1 or > 65535
                || uri.AbsolutePath is not ("" or "/"))
                throw r.Invalid(key, string.Join(",", seeds),
                    $"addresses such as {protocol}://{AkkaSetup.SystemName}@10.0.0.1:4053, separated by commas (\"{seed}\" is not one{SchemeHint(protocol)})");
        }
        return [.. seeds.Select(s => s.TrimEnd('/'))];
    }

    private static string SchemeHint(string protocol) => protocol == AkkaSetup.Protocol(tls: true)
        ? "; with broker.cluster.tls every node speaks TLS, at akka.ssl.tcp:// addresses"
        : "; akka.ssl.tcp:// addresses are those of nodes with broker.cluster.tls";
}
