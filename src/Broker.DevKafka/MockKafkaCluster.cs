using System.Net;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Broker.DevKafka;

/// <summary>
/// An in-process Kafka-protocol endpoint backed by librdkafka's mock cluster. Messages live in
/// memory only. Each mock broker listens on an ephemeral loopback port of its own choosing, so
/// we put a <see cref="TcpForwarder"/> on the requested port in front of it: clients bootstrap
/// through the fixed port. On loopback the mock advertises its own listener, so the clients'
/// produce and fetch traffic goes to it directly; on another address the mock advertises the
/// forwarder (it is the only way in).
/// <para>
/// A topic that a Kafka client names first (a producer such as kcat writing to a new topic) is
/// created automatically, like a Kafka broker with auto.create.topics.enable does: with
/// <c>autoCreatePartitions</c> partitions (or per topic, <c>autoCreatePartitionsOf</c>) when given (the mock alone would create 4, and has no
/// setting for it). The forwarder creates such topics itself before the Metadata request that
/// names them reaches the mock, so it must see every Metadata request of those clients: with
/// <c>autoCreatePartitions</c> on loopback, clients other than the broker's own (whose
/// <c>client.id</c> begins with <see cref="BrokerClientIdPrefix"/>; they create their topics
/// before they use them) read Metadata answers rewritten to name the forwarder, and stay on it.
/// </para>
/// </summary>
public sealed unsafe class MockKafkaCluster : IDisposable
{
    /// <summary>
    /// Clients whose <c>client.id</c> begins with this (the broker's producer and consumers) are sent
    /// to the mock's own listener on loopback even when auto-created topics get a partition count.
    /// </summary>
    public const string BrokerClientIdPrefix = "broker-";

    private readonly Lock _gate = new();
    private readonly IntPtr _rk;
    private IntPtr _mcluster;
    private readonly List<TcpForwarder> _forwarders = [];

    private MockKafkaCluster(IntPtr rk, IntPtr mcluster)
    {
        _rk = rk;
        _mcluster = mcluster;
    }

    /// <summary>
    /// Starts a cluster of <paramref name="brokers"/> brokers (ids 1..n). Broker i is reachable on
    /// <paramref name="host"/>:<paramref name="port"/>+i-1; with port 0 every broker gets a free port.
    /// </summary>
    /// <param name="autoCreatePartitions">Partitions of topics created because a client named them first; null: the mock's own default (4).</param>
    public static MockKafkaCluster Start(string host = "127.0.0.1", int port = 9092, int brokers = 1, int? autoCreatePartitions = null)
    {
        if (autoCreatePartitions is < 1) throw new ArgumentOutOfRangeException(nameof(autoCreatePartitions));
        return Start(host, port, brokers, autoCreatePartitions is { } n ? _ => n : null);
    }

    /// <summary>
    /// As <see cref="Start(string, int, int, int?)"/>, with the partitions of a topic that a client
    /// names first chosen per Kafka topic (the broker maps it back to its namespace).
    /// </summary>
    public static MockKafkaCluster Start(string host, int port, int brokers, Func<string, int>? autoCreatePartitionsOf)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        var address = IPAddress.TryParse(host, out var ip)
            ? ip
            : Dns.GetHostAddresses(host).First(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);

        NativeLibrdkafka.EnsureLoaded();
        ContinueSignal.UseDefault(); // a SIGSTOP/SIGCONT must not end the mock's poll loop
        // The mock cluster needs an rd_kafka_t for bookkeeping only; it never connects anywhere.
        var conf = MockApi.ConfNew();
        var errstr = stackalloc byte[512];
        // Hide the notice that this handle has no bootstrap.servers (it needs none); keep warnings.
        fixed (byte* name = "log_level\0"u8, value = "4\0"u8)
            MockApi.ConfSet(conf, name, value, errstr, 512);
        var rk = MockApi.New(MockApi.RdKafkaProducer, conf, errstr, 512);
        if (rk == IntPtr.Zero)
        {
            MockApi.ConfDestroy(conf);
            throw new InvalidOperationException("rd_kafka_new failed: " + Marshal.PtrToStringUTF8((IntPtr)errstr));
        }

        var mcluster = MockApi.ClusterNew(rk, brokers);
        if (mcluster == IntPtr.Zero)
        {
            MockApi.Destroy(rk);
            throw new InvalidOperationException("rd_kafka_mock_cluster_new failed (see librdkafka log)");
        }

        var cluster = new MockKafkaCluster(rk, mcluster);
        try
        {
            // "127.0.0.1:p1,127.0.0.1:p2,..." in broker id order.
            var mockPorts = Marshal.PtrToStringUTF8((IntPtr)MockApi.ClusterBootstraps(mcluster))!
                .Split(',')
                .Select(hp => int.Parse(hp[(hp.LastIndexOf(':') + 1)..]))
                .ToArray();

            var addresses = new List<string>();
            var forwarderPorts = new int[brokers + 1];
            var loopback = IPAddress.IsLoopback(address);
            MetadataHooks? hooks = autoCreatePartitionsOf is { } partitionsOf
                ? new MetadataHooks(
                    request => cluster.CreateRequestedTopics(request.Span, partitionsOf),
                    // Off loopback the mock advertises the forwarders itself: every client stays on them.
                    loopback ? clientId => clientId?.StartsWith(BrokerClientIdPrefix, StringComparison.Ordinal) != true : null,
                    id => id >= 1 && id <= brokers ? (host, Volatile.Read(ref forwarderPorts[id])) : null)
                : null;
            for (var id = 1; id <= brokers; id++)
            {
                var fwd = new TcpForwarder(address, port == 0 ? 0 : port + id - 1, mockPorts[id - 1], hooks);
                cluster._forwarders.Add(fwd);
                Volatile.Write(ref forwarderPorts[id], fwd.Port);
                // On loopback, clients that bootstrapped through the fixed port then talk to the mock
                // broker's own listener (127.0.0.1 too), as Metadata advertises it: produce and fetch
                // traffic does not cross the forwarder, which would add two socket hops and thread-pool
                // copies to every request (a latency floor under load). On any other address the
                // forwarder is advertised, since the mock itself listens on loopback only.
                if (!loopback)
                    MockApi.WithUtf8(host, h => { MockApi.BrokerSetHostPort(mcluster, id, (byte*)h, fwd.Port); return 0; });
                addresses.Add($"{host}:{fwd.Port}");
            }
            cluster.BootstrapServers = string.Join(',', addresses);
            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    /// <summary>The address(es) clients put in bootstrap.servers, e.g. "127.0.0.1:9092".</summary>
    public string BootstrapServers { get; private set; } = "";

    /// <summary>Creates a topic; an already existing topic is left as it is.</summary>
    public void CreateTopic(string topic, int partitions = 1, int replicationFactor = 1)
    {
        var err = Call(m => MockApi.WithUtf8(topic, t => MockApi.TopicCreate(m, (byte*)t, partitions, replicationFactor)));
        if (err != MockApi.ErrTopicAlreadyExists)
            Check(err, $"create topic '{topic}'");
    }

    /// <summary>Creates the topics a Metadata request names, when it allows auto-creation, before the mock would (with 4 partitions).</summary>
    private void CreateRequestedTopics(ReadOnlySpan<byte> metadataRequest, Func<string, int> partitionsOf)
    {
        foreach (var topic in MetadataRequest.TopicsToCreate(metadataRequest))
            CreateTopic(topic, Math.Max(1, partitionsOf(topic)));
    }

    /// <summary>Closes the broker's connections and refuses new ones (no leader change).</summary>
    public void SetBrokerDown(int brokerId = 1) =>
        Check(Call(m => MockApi.BrokerSetDown(m, brokerId)), $"set broker {brokerId} down");

    /// <summary>Lets the broker accept connections again.</summary>
    public void SetBrokerUp(int brokerId = 1) =>
        Check(Call(m => MockApi.BrokerSetUp(m, brokerId)), $"set broker {brokerId} up");

    /// <summary>Drops records below <paramref name="beforeOffset"/>, moving the low watermark (simulated retention).</summary>
    public void DeleteRecords(string topic, int partition, long beforeOffset)
    {
        if (MockApi.PartitionDeleteRecords == null)
            throw new NotSupportedException("The loaded librdkafka has no rd_kafka_mock_partition_delete_records.");
        var err = Call(m => MockApi.WithUtf8(topic, t => MockApi.PartitionDeleteRecords(m, (byte*)t, partition, beforeOffset)));
        Check(err, $"delete records of {topic}[{partition}] before offset {beforeOffset}");
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_mcluster == IntPtr.Zero)
                return;
            foreach (var f in _forwarders)
                f.Dispose();
            MockApi.ClusterDestroy(_mcluster);
            MockApi.Destroy(_rk);
            _mcluster = IntPtr.Zero;
        }
    }

    // Serialises native calls against Dispose so none runs on a destroyed cluster.
    private int Call(Func<IntPtr, int> call)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_mcluster == IntPtr.Zero, this);
            return call(_mcluster);
        }
    }

    // rd_kafka_resp_err_t values coincide with Confluent.Kafka.ErrorCode, which gives readable reasons.
    private static void Check(int err, string what)
    {
        if (err != 0)
            throw new KafkaException(new Error((ErrorCode)err, $"Mock cluster could not {what}: {(ErrorCode)err}"));
    }
}
