using System.Text;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>A record of a Kafka topic as read back by a test: its place, key (UTF-8), value and headers.</summary>
public sealed record LoggedRecord(int Partition, long Offset, string? Key, byte[] Value, IReadOnlyDictionary<string, string> Headers)
{
    /// <summary>The value as a string (the broker writes JSON).</summary>
    public string Text => Encoding.UTF8.GetString(Value);

    /// <summary>The position of the record in a one-partition topic (offset + 1), as acks name it.</summary>
    public string Pos => Position.Single(Offset + 1).Encode();

    /// <summary>The publishing client's identity (header <c>broker-client</c>), if the record came from a client with one.</summary>
    public string? Client => Headers.GetValueOrDefault("broker-client");

    /// <summary>The publish's request id (header <c>broker-id</c>).</summary>
    public string? Id => Headers.GetValueOrDefault("broker-id");
}

/// <summary>The one Kafka read-back helper of the integration tests: a whole topic, every partition, from its start.</summary>
public static class LogReadBack
{
    /// <summary>Every record of <paramref name="topic"/> (each partition in offset order, partitions one after the other), bounded in time.</summary>
    public static List<LoggedRecord> All(string bootstrap, string topic, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "test-read-back-" + Guid.NewGuid().ToString("N"), // required by the client; Assign() never joins it
            EnableAutoCommit = false,
            AllowAutoCreateTopics = false,
        }).Build();
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single(t => t.Topic == topic).Partitions.Count;
        var high = new long[partitions];
        var assignment = new List<TopicPartitionOffset>();
        for (var p = 0; p < partitions; p++)
        {
            var wm = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10));
            high[p] = wm.High.Value;
            if (wm.High.Value > wm.Low.Value) assignment.Add(new TopicPartitionOffset(topic, p, wm.Low));
        }
        var records = new List<LoggedRecord>();
        var next = new long[partitions];
        consumer.Assign(assignment);
        foreach (var a in assignment) next[a.Partition.Value] = a.Offset.Value;
        while (assignment.Any(a => next[a.Partition.Value] < high[a.Partition.Value]))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{topic} was not read back in time ({records.Count} records)");
            var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (r is null || r.IsPartitionEOF) continue;
            var headers = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var h in r.Message.Headers ?? []) headers[h.Key] = Encoding.UTF8.GetString(h.GetValueBytes());
            records.Add(new LoggedRecord(r.Partition.Value, r.Offset.Value,
                r.Message.Key is null ? null : Encoding.UTF8.GetString(r.Message.Key), r.Message.Value ?? [], headers));
            next[r.Partition.Value] = r.Offset.Value + 1;
        }
        consumer.Close();
        return [.. records.OrderBy(r => r.Partition).ThenBy(r => r.Offset)];
    }
}
