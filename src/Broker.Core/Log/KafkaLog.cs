using System.Collections.Concurrent;
using System.Text;
using Broker.Core.Settings;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Broker.Core.Log;

/// <summary>Creates the Kafka topic behind a broker topic when it does not exist yet.</summary>
public interface ITopicProvisioner
{
    /// <summary>Creates the topic of <paramref name="mapping"/> with its settings (partitions, replication factor, retention) where the provisioner can.</summary>
    Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct);
}

/// <summary>
/// The watermarks of every partition of a Kafka topic (index = partition): <see cref="Low"/> the first
/// retained offset, <see cref="High"/> the next offset to be written.
/// </summary>
public readonly record struct TopicHeads(long[] Low, long[] High)
{
    public int Partitions => High.Length;
}

/// <summary>The Kafka topic of a namespace with <c>create = false</c> does not exist.</summary>
public sealed class TopicNotFoundException(string kafkaTopic) : Exception($"the Kafka topic {kafkaTopic} does not exist");

/// <summary>Creates topics through the Kafka AdminClient (real Kafka); "already exists" is success.</summary>
public sealed class AdminClientTopicProvisioner(KafkaSettings settings, KafkaClientLog? clientLog = null) : ITopicProvisioner, IDisposable
{
    private readonly IAdminClient _admin = new AdminClientBuilder(KafkaLog.WithClientConfig(new AdminClientConfig { BootstrapServers = settings.BootstrapServers }, settings)).WithLog(clientLog).Build();

    public async Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct)
    {
        var spec = new TopicSpecification { Name = mapping.KafkaTopic, NumPartitions = mapping.Partitions, ReplicationFactor = mapping.ReplicationFactor };
        if (mapping.Retention is { } retention)
            spec.Configs = new Dictionary<string, string> { ["retention.ms"] = ((long)retention.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture) };
        try
        {
            await _admin.CreateTopicsAsync(
                [spec],
                new CreateTopicsOptions { RequestTimeout = settings.QueryTimeout, OperationTimeout = settings.QueryTimeout }).WaitAsync(ct);
        }
        catch (CreateTopicsException e) when (e.Results.TrueForAll(r => r.Error.Code is ErrorCode.NoError or ErrorCode.TopicAlreadyExists))
        {
        }
    }

    public void Dispose() => _admin.Dispose();
}

/// <summary>
/// The node's connection to the Kafka log: one idempotent producer (acks=all) shared by every
/// topic actor of the node, watermark queries, and topic provisioning with a per-topic cache.
/// </summary>
public sealed class KafkaLog : IDisposable
{
    /// <summary>Header set on records written by the broker itself: the value is validated JSON.</summary>
    public const string ContentTypeHeader = "broker-ct";
    /// <summary>Headers that identify a client publish (client identity and request id), for de-duplicating retries.</summary>
    public const string ClientHeader = "broker-client";
    public const string RequestIdHeader = "broker-id";
    /// <summary>On a multiplexed namespace the Kafka key is the broker topic; a publish's own key travels in this header.</summary>
    public const string KeyHeader = "broker-key";
    public static readonly byte[] JsonContentType = "json"u8.ToArray();

    private readonly KafkaSettings _settings;
    private readonly ITopicProvisioner _provisioner;
    private readonly IProducer<byte[]?, byte[]?> _producer;
    private readonly IConsumer<byte[]?, byte[]?> _metadata;
    private readonly ConcurrentDictionary<string, Task> _ensured = new();
    private readonly BlockingCalls _queries;
    private readonly CoalescingQueries<TopicPartition, WatermarkOffsets> _watermarks;
    private readonly ConcurrentDictionary<string, (int Count, long At)> _partitions = new(StringComparer.Ordinal);

    public KafkaLog(KafkaSettings settings, ITopicProvisioner provisioner, KafkaClientLog? clientLog = null)
    {
        _settings = settings;
        _provisioner = provisioner;
        _queries = new BlockingCalls(settings.QueryThreads, "broker-kafka-query", settings.CloseTimeout);
        _producer = new ProducerBuilder<byte[]?, byte[]?>(ProducerConfig(settings)).WithLog(clientLog).Build();
        _metadata = new ConsumerBuilder<byte[]?, byte[]?>(ConsumerConfig(settings, "broker-metadata")).WithLog(clientLog).Build();
        _watermarks = new CoalescingQueries<TopicPartition, WatermarkOffsets>(tp => _queries.Run(() => _metadata.QueryWatermarkOffsets(tp, _settings.QueryTimeout)));
    }

    public KafkaSettings Settings => _settings;

    /// <summary>
    /// Sets <see cref="KafkaSettings.ClientConfig"/> (SASL, SSL, any librdkafka property) on a
    /// client's configuration: every producer, consumer and admin client of the node goes through here.
    /// </summary>
    public static T WithClientConfig<T>(T config, KafkaSettings s) where T : ClientConfig
    {
        foreach (var (key, value) in s.ClientConfig) config.Set(key, value);
        return config;
    }

    public static ProducerConfig ProducerConfig(KafkaSettings s) => WithClientConfig(new ProducerConfig
    {
        BootstrapServers = s.BootstrapServers,
        Acks = Acks.All,
        EnableIdempotence = true,
        LingerMs = s.ProduceLinger.TotalMilliseconds,
        MessageTimeoutMs = (int)s.ProduceTimeout.TotalMilliseconds,
        // A bounded queue: during an outage records wait here until their timeout; once it is full a
        // publish is refused at once (Local_QueueFull) instead of growing the process.
        QueueBufferingMaxMessages = s.ProducerQueueMessages,
        QueueBufferingMaxKbytes = (int)Math.Clamp(s.ProducerQueueBytes / 1024, 1, int.MaxValue),
        SocketNagleDisable = true,
        ClientId = "broker-producer",
        // Keys go to the partition Java clients choose (murmur2), so a key keeps its order even
        // when other services write the same topic; keyless records are spread at random.
        Partitioner = Confluent.Kafka.Partitioner.Murmur2Random,
        ReconnectBackoffMs = ReconnectBackoffMs(s),
        ReconnectBackoffMaxMs = (int)s.ReconnectBackoffMax.TotalMilliseconds,
    }, s);

    // librdkafka's default backoff grows to 10 s: after an outage the log would be back long
    // before the broker noticed. The initial backoff must not exceed the maximum.
    private static int ReconnectBackoffMs(KafkaSettings s) => (int)Math.Min(100, s.ReconnectBackoffMax.TotalMilliseconds);

    public static ConsumerConfig ConsumerConfig(KafkaSettings s, string clientId) => WithClientConfig(new ConsumerConfig
    {
        BootstrapServers = s.BootstrapServers,
        GroupId = "broker-" + clientId + "-" + Guid.NewGuid().ToString("N"),
        EnableAutoCommit = false,
        EnableAutoOffsetStore = false,
        EnablePartitionEof = false,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        FetchWaitMaxMs = (int)s.FetchWaitMax.TotalMilliseconds,
        SocketNagleDisable = true,
        ClientId = clientId,
        ReconnectBackoffMs = ReconnectBackoffMs(s),
        ReconnectBackoffMaxMs = (int)s.ReconnectBackoffMax.TotalMilliseconds,
    }, s);

    /// <summary>Ensures the Kafka topic exists (once per node and topic, retried after a failure).</summary>
    public Task EnsureTopicAsync(string kafkaTopic, CancellationToken ct = default) =>
        EnsureTopicAsync(new TopicMapping(kafkaTopic, _settings.Partitions, _settings.ReplicationFactor, true, false, null), ct);

    /// <summary>
    /// Raised once per Kafka topic when <see cref="EnsureTopicAsync(TopicMapping, CancellationToken)"/>
    /// found or created it (on a thread-pool thread, with the mapping of the call that ensured it); the
    /// node starts reading a multiplexed namespace's shared topic from then on (<c>fanout.offset-index</c>).
    /// </summary>
    public event Action<TopicMapping>? TopicEnsured;

    /// <summary>
    /// Ensures the topic of <paramref name="mapping"/> exists: creates it, or with <c>create = false</c>
    /// checks that it exists (<see cref="TopicNotFoundException"/> otherwise). Once per node and topic;
    /// retried after a failure.
    /// </summary>
    public Task EnsureTopicAsync(TopicMapping mapping, CancellationToken ct = default)
    {
        var kafkaTopic = mapping.KafkaTopic;
        var task = _ensured.GetOrAdd(kafkaTopic, _ =>
        {
            var ensure = mapping.Create ? _provisioner.EnsureTopicAsync(mapping, CancellationToken.None) : PartitionCountAsync(kafkaTopic);
            // A failure is not cached: the next use tries again (the topic may exist by then).
            ensure.ContinueWith(t =>
                {
                    if (t.IsCompletedSuccessfully) TopicEnsured?.Invoke(mapping);
                    else _ensured.TryRemove(new KeyValuePair<string, Task>(kafkaTopic, t));
                },
                CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            return ensure;
        });
        return task.WaitAsync(ct);
    }

    /// <summary>Writes one record; completes when Kafka acknowledged it (acks=all) or fails after the produce timeout.</summary>
    public Task<DeliveryResult<byte[]?, byte[]?>> ProduceAsync(string kafkaTopic, string? key, byte[] jsonValue, string? clientId = null, string? requestId = null) =>
        _producer.ProduceAsync(kafkaTopic, Record(key, jsonValue, clientId, requestId));

    /// <summary>
    /// Writes one record and calls <paramref name="onDelivery"/> when Kafka acknowledged it or it failed.
    /// Unlike the tasks of <see cref="ProduceAsync"/> (whose continuations run on the thread pool),
    /// the callbacks run on the producer's poll thread in the order the records were written (per partition).
    /// Throws <see cref="KafkaException"/> when the record cannot even be queued.
    /// </summary>
    public void Produce(string kafkaTopic, string? key, byte[] jsonValue, string? clientId, string? requestId, Action<DeliveryReport<byte[]?, byte[]?>> onDelivery) =>
        _producer.Produce(kafkaTopic, Record(key, jsonValue, clientId, requestId), onDelivery);

    /// <summary>
    /// Writes one record of a multiplexed namespace to <paramref name="partition"/> of its shared Kafka
    /// topic: the Kafka key is the broker topic, the publish's own key goes in the <c>broker-key</c>
    /// header. Otherwise as <see cref="Produce(string, string?, byte[], string?, string?, Action{DeliveryReport{byte[], byte[]}})"/>.
    /// </summary>
    public void ProduceShared(string kafkaTopic, int partition, string topic, string? key, byte[] jsonValue, string? clientId, string? requestId,
        Action<DeliveryReport<byte[]?, byte[]?>> onDelivery)
    {
        var record = Record(null, jsonValue, clientId, requestId);
        record.Key = Encoding.UTF8.GetBytes(topic);
        if (key is not null) record.Headers.Add(KeyHeader, Encoding.UTF8.GetBytes(key));
        _producer.Produce(new TopicPartition(kafkaTopic, partition), record, onDelivery);
    }

    private static Message<byte[]?, byte[]?> Record(string? key, byte[] jsonValue, string? clientId, string? requestId)
    {
        var headers = new Headers { { ContentTypeHeader, JsonContentType } };
        if (clientId is not null && requestId is not null)
        {
            headers.Add(ClientHeader, Encoding.UTF8.GetBytes(clientId));
            headers.Add(RequestIdHeader, Encoding.UTF8.GetBytes(requestId));
        }
        return new Message<byte[]?, byte[]?>
        {
            Key = key is null ? null : Encoding.UTF8.GetBytes(key),
            Value = jsonValue,
            Headers = headers,
        };
    }

    /// <summary>
    /// The number of partitions of a Kafka topic, from the cluster's metadata; cached per topic for
    /// <see cref="KafkaSettings.PartitionRefresh"/> so that partitions added to a topic are picked up.
    /// </summary>
    public async Task<int> PartitionCountAsync(string kafkaTopic, CancellationToken ct = default, bool awaitCreation = false)
    {
        var now = Environment.TickCount64;
        if (_partitions.TryGetValue(kafkaTopic, out var cached) && now - cached.At < _settings.PartitionRefresh.TotalMilliseconds) return cached.Count;
        var count = await _queries.Run(() =>
        {
            using var admin = new DependentAdminClientBuilder(_metadata.Handle).Build();
            var deadline = Environment.TickCount64 + (long)_settings.QueryTimeout.TotalMilliseconds;
            while (true)
            {
                // The metadata consumer has allow.auto.create.topics off: asking does not create the topic.
                var meta = admin.GetMetadata(kafkaTopic, _settings.QueryTimeout);
                var topic = meta.Topics.Find(t => t.Topic == kafkaTopic);
                if (topic is not null && topic.Error.Code != ErrorCode.UnknownTopicOrPart && topic.Partitions.Count > 0)
                {
                    if (topic.Error.IsError) throw new KafkaException(topic.Error);
                    return topic.Partitions.Count;
                }
                // A topic just created through the AdminClient reaches every Kafka broker's metadata a little later.
                if (!awaitCreation || Environment.TickCount64 > deadline || ct.IsCancellationRequested) throw new TopicNotFoundException(kafkaTopic);
                Thread.Sleep(_settings.MetadataRetry); // a dedicated query thread, not the thread pool
            }
        }, ct).ConfigureAwait(false);
        _partitions[kafkaTopic] = (count, now);
        return count;
    }

    /// <summary>
    /// Whether the Kafka topic exists now, from the metadata of every topic: a request that names the
    /// topic may create it (a Kafka broker with auto.create.topics.enable, the embedded log), with
    /// the broker's partitions instead of its namespace's.
    /// </summary>
    public Task<bool> TopicExistsAsync(string kafkaTopic, CancellationToken ct = default) =>
        _queries.Run(() =>
        {
            using var admin = new DependentAdminClientBuilder(_metadata.Handle).Build();
            var topic = admin.GetMetadata(_settings.QueryTimeout).Topics.Find(t => t.Topic == kafkaTopic);
            return topic is not null && !topic.Error.IsError && topic.Partitions.Count > 0;
        }, ct);

    /// <summary>
    /// Low and high watermarks of every partition of a topic (index = partition): the first retained
    /// offset and the next offset to be written. The partitions are queried in parallel.
    /// </summary>
    public async Task<TopicHeads> QueryHeadsAsync(string kafkaTopic, CancellationToken ct = default)
    {
        var partitions = await PartitionCountAsync(kafkaTopic, ct, awaitCreation: true).ConfigureAwait(false);
        var queries = new Task<WatermarkOffsets>[partitions];
        for (var p = 0; p < partitions; p++) queries[p] = QueryWatermarksAsync(kafkaTopic, p, ct);
        var low = new long[partitions];
        var high = new long[partitions];
        for (var p = 0; p < partitions; p++)
        {
            var wm = await queries[p].ConfigureAwait(false);
            low[p] = Math.Max(0, wm.Low.Value);
            high[p] = Math.Max(low[p], wm.High.Value);
        }
        return new TopicHeads(low, high);
    }

    /// <summary>
    /// Low and high watermark of a partition (the first retained offset and the next offset to be
    /// written), as of this call or later: concurrent callers of one partition share a query that
    /// began after they asked (<see cref="CoalescingQueries{TKey, T}"/>).
    /// </summary>
    public Task<WatermarkOffsets> QueryWatermarksAsync(string kafkaTopic, int partition, CancellationToken ct = default) =>
        _watermarks.RunAsync(new TopicPartition(kafkaTopic, partition), ct);

    public void Dispose()
    {
        try { _producer.Flush(_settings.CloseTimeout); } catch (KafkaException) { }
        _producer.Dispose();
        _queries.Dispose();
        _metadata.Close();
        _metadata.Dispose();
    }
}
