using Confluent.Kafka;

namespace Broker.Tests.Infrastructure;

/// <summary>Reads records back from Kafka by offset, with a bounded wait.</summary>
public static class KafkaRead
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static List<ConsumeResult<byte[]?, byte[]?>> From(string bootstrap, string topic, long offset, int count) =>
        Read(bootstrap, [new TopicPartitionOffset(topic, 0, offset)], count);

    /// <summary>The first <paramref name="count"/> records of all <paramref name="partitions"/> partitions, read from their beginning.</summary>
    public static List<ConsumeResult<byte[]?, byte[]?>> All(string bootstrap, string topic, int partitions, int count) =>
        Read(bootstrap, [.. Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning))], count);

    private static List<ConsumeResult<byte[]?, byte[]?>> Read(string bootstrap, List<TopicPartitionOffset> from, int count)
    {
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "test-reader", // required by the client; Assign() never joins the group
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Error,
        }).Build();
        consumer.Assign(from);
        var results = new List<ConsumeResult<byte[]?, byte[]?>>();
        var deadline = DateTime.UtcNow + Timeout;
        while (results.Count < count && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false } r) results.Add(r);
        }
        Assert.True(results.Count == count, $"read {results.Count} of {count} records from {string.Join(", ", from)} within {Timeout}");
        consumer.Close();
        return results;
    }
}
