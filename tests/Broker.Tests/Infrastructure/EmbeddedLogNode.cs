using Broker.Core.Fanout;
using Broker.Core.Log;
using Broker.Core.Replay;
using Broker.Core.Settings;
using Broker.DevKafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Tests.Infrastructure;

/// <summary>
/// A node's view of the embedded log: a mock cluster on 127.0.0.1, the <see cref="TestDefaults.Kafka"/>
/// settings reaching it (changed by the test, with <c>with { … }</c>), and a <see cref="KafkaLog"/> that
/// creates topics with the mapping's partitions. The feed hubs and catch-up readers it makes are its own:
/// disposing it disposes them, the log and the cluster, newest first.
/// </summary>
public sealed class EmbeddedLogNode : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    /// <param name="adjust">Changes the default settings, e.g. <c>s =&gt; s with { MaxConcurrentReplays = 1 }</c>.</param>
    public EmbeddedLogNode(Func<KafkaSettings, KafkaSettings>? adjust = null)
    {
        Cluster = MockKafkaCluster.Start("127.0.0.1", 0);
        try
        {
            var defaults = TestDefaults.Kafka(Cluster.BootstrapServers);
            Settings = adjust is null ? defaults : adjust(defaults);
            Log = Own(new KafkaLog(Settings, new MockClusterProvisioner(Cluster)));
        }
        catch
        {
            Cluster.Dispose();
            throw;
        }
    }

    public MockKafkaCluster Cluster { get; }

    public KafkaSettings Settings { get; }

    public KafkaLog Log { get; }

    /// <summary>The mapping of <paramref name="topic"/> under <see cref="Settings"/> (a topic the test knows to map).</summary>
    public TopicMapping Map(string topic) => Settings.Resolve(topic)!;

    /// <summary>A feed hub of this node (no recent history and no offset index unless given).</summary>
    public FeedHub Hub(RecentHistorySettings? history = null, OffsetIndexSettings? index = null,
        Func<string, CancellationToken, Task<int>>? partitionCount = null) =>
        Own(new FeedHub(Settings, NullLogger<FeedHub>.Instance, partitionCount: partitionCount, history: history, index: index));

    /// <summary>A catch-up reader of this node.</summary>
    public CatchUpReader Reader() => Own(new CatchUpReader(Settings));

    public void Dispose()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _owned.Clear();
        Cluster.Dispose();
    }

    private T Own<T>(T disposable) where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }
}
