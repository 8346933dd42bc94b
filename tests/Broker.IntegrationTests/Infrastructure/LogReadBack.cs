using System.Text;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>One record of a single-partition topic, with the position a subscriber sees for it.</summary>
public sealed record LoggedRecord(long Offset, string Pos, byte[] Value, string? Key, IReadOnlyDictionary<string, string> Headers)
{
    public string Text => Encoding.UTF8.GetString(Value);
}

/// <summary>Reads a topic's whole partition 0 back from the Kafka log (bounded wait), to check what was written and how often.</summary>
public static class LogReadBack
{
    public static List<LoggedRecord> All(string bootstrap, string kafkaTopic, TimeSpan? timeout = null)
    {
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "read-back-" + Guid.NewGuid().ToString("N"), // required by the client; Assign() never joins
            EnableAutoCommit = false,
        }).Build();
        var tp = new TopicPartition(kafkaTopic, 0);
        var wm = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
        consumer.Assign(new TopicPartitionOffset(tp, wm.Low));
        var records = new List<LoggedRecord>();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        for (var next = wm.Low.Value; next < wm.High.Value;)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"read {records.Count} records of {kafkaTopic} up to offset {next} of {wm.High.Value}");
            var r = consumer.Consume(TimeSpan.FromSeconds(1));
            if (r is null || r.IsPartitionEOF) continue;
            var headers = new Dictionary<string, string>();
            foreach (var h in r.Message.Headers ?? []) headers[h.Key] = Encoding.UTF8.GetString(h.GetValueBytes());
            records.Add(new LoggedRecord(r.Offset.Value, Position.Single(r.Offset.Value + 1).Encode(), r.Message.Value ?? [],
                r.Message.Key is null ? null : Encoding.UTF8.GetString(r.Message.Key), headers));
            next = r.Offset.Value + 1;
        }
        consumer.Close();
        return records;
    }
}
