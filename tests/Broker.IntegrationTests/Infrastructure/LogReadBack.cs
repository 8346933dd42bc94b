using System.Text;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>A record of a Kafka topic as read back by a test, with the broker's client headers.</summary>
public sealed record LoggedRecord(int Partition, long Offset, byte[]? Key, byte[]? Value, string? Client, string? Id)
{
    /// <summary>The value as a string (the broker writes JSON).</summary>
    public string Text => Value is null ? "" : Encoding.UTF8.GetString(Value);

    /// <summary>The position of the record in a one-partition topic (offset + 1), as acks name it.</summary>
    public string SinglePartitionPos => Position.Single(Offset + 1).Encode();
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
        while (Enumerable.Range(0, partitions).Any(p => next[p] < high[p] && assignment.Any(a => a.Partition.Value == p)))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{topic} was not read back in time ({records.Count} records)");
            var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (r is null || r.IsPartitionEOF) continue;
            string? client = null, id = null;
            foreach (var h in r.Message.Headers ?? [])
            {
                if (h.Key == "broker-client") client = Encoding.UTF8.GetString(h.GetValueBytes());
                else if (h.Key == "broker-id") id = Encoding.UTF8.GetString(h.GetValueBytes());
            }
            records.Add(new LoggedRecord(r.Partition.Value, r.Offset.Value, r.Message.Key, r.Message.Value, client, id));
            next[r.Partition.Value] = r.Offset.Value + 1;
        }
        consumer.Close();
        return [.. records.OrderBy(r => r.Partition).ThenBy(r => r.Offset)];
    }
}
