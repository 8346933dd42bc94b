using Confluent.Kafka;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>Reads what the log holds, for tests that check every answer against it.</summary>
public static class KafkaRead
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Every retained record of one partition, in offset order (up to its high watermark when called).</summary>
    public static List<ConsumeResult<byte[]?, byte[]?>> Partition(string bootstrap, string topic, int partition)
    {
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "test-reader", // required by the client; Assign() never joins the group
            EnableAutoCommit = false,
        }).Build();
        var tp = new TopicPartition(topic, partition);
        var wm = consumer.QueryWatermarkOffsets(tp, Timeout);
        var records = new List<ConsumeResult<byte[]?, byte[]?>>();
        if (wm.High.Value <= wm.Low.Value) return records;
        consumer.Assign(new TopicPartitionOffset(tp, wm.Low));
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is not { IsPartitionEOF: false } r) continue;
            records.Add(r);
            if (r.Offset.Value + 1 >= wm.High.Value) return records;
        }
        throw new TimeoutException($"read {records.Count} records of {topic}[{partition}] up to {wm.High} within {Timeout}");
    }
}
