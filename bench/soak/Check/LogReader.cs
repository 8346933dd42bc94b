using System.Text;
using Broker.DevKafka;
using Broker.Soak.Clients;
using Confluent.Kafka;

namespace Broker.Soak.Check;

/// <summary>One record of the log as the checker sees it.</summary>
public sealed record LogRecord(string Topic, int Partition, long Offset, MsgId? Msg, string? Client, string? Id, string? Key);

/// <summary>Every record of every soak topic, partition by partition, from the first offset.</summary>
public sealed class LogSnapshot(Dictionary<string, List<List<LogRecord>>> topics, List<string> truncated)
{
    /// <summary>Topic → partitions → records in offset order.</summary>
    public Dictionary<string, List<List<LogRecord>>> Topics { get; } = topics;

    /// <summary>Partitions whose first offset is not 0 (retention deleted records: the run cannot be checked completely).</summary>
    public List<string> Truncated { get; } = truncated;

    public IEnumerable<LogRecord> All => Topics.Values.SelectMany(p => p).SelectMany(r => r);

    public int Count => Topics.Values.Sum(p => p.Sum(r => r.Count));

    /// <summary>The last record of each partition of each topic (what a subscriber that caught up has received).</summary>
    public Dictionary<string, List<MsgId>> LastRecords() =>
        Topics.ToDictionary(t => t.Key, t => t.Value.Where(p => p.Count > 0 && p[^1].Msg is not null).Select(p => p[^1].Msg!.Value).ToList());

    /// <summary>High watermarks, to tell whether the log changed since.</summary>
    public string Signature => string.Join(",", Topics.OrderBy(t => t.Key, StringComparer.Ordinal)
        .Select(t => t.Key + ":" + string.Join("/", t.Value.Select(p => p.Count == 0 ? 0 : p[^1].Offset + 1))));
}

/// <summary>Reads the whole log back from the Kafka-protocol log: every topic whose name starts with the prefix.</summary>
public static class LogReader
{
    public static LogSnapshot Read(string bootstrap, string prefix, TimeSpan timeout)
    {
        NativeLibrdkafka.EnsureLoaded();
        var deadline = DateTime.UtcNow + timeout;
        List<(string Topic, int Partitions)> topics;
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
        {
            topics = [.. admin.GetMetadata(TimeSpan.FromSeconds(20)).Topics
                .Where(t => t.Topic.StartsWith(prefix, StringComparison.Ordinal) && t.Error.Code == ErrorCode.NoError)
                .Select(t => (t.Topic, t.Partitions.Count))];
        }
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "soak-checker", // required by the client; Assign() never joins the group
            EnableAutoCommit = false,
            EnablePartitionEof = false,
        }).Build();
        var result = new Dictionary<string, List<List<LogRecord>>>(StringComparer.Ordinal);
        var truncated = new List<string>();
        var high = new Dictionary<TopicPartition, long>();
        var assign = new List<TopicPartitionOffset>();
        foreach (var (topic, partitions) in topics)
        {
            result[topic] = [.. Enumerable.Range(0, partitions).Select(_ => new List<LogRecord>())];
            for (var p = 0; p < partitions; p++)
            {
                var tp = new TopicPartition(topic, p);
                var wm = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(20));
                if (wm.Low.Value > 0) truncated.Add($"{topic}[{p}] starts at {wm.Low.Value}");
                if (wm.High.Value <= wm.Low.Value) continue;
                high[tp] = wm.High.Value;
                assign.Add(new TopicPartitionOffset(tp, wm.Low));
            }
        }
        consumer.Assign(assign);
        var remaining = new HashSet<TopicPartition>(high.Keys);
        while (remaining.Count > 0)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the log was not read back within {timeout.TotalSeconds:0}s: {remaining.Count} partitions unfinished");
            if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is not { } r) continue;
            MsgId? msg = r.Message.Value is { } v && Payload.TryDecode(v, out var id) ? id : null;
            string? Header(string name) => r.Message.Headers?.TryGetLastBytes(name, out var b) == true ? Encoding.UTF8.GetString(b) : null;
            var key = r.Message.Key is { } k ? Encoding.UTF8.GetString(k) : null;
            result[r.Topic][r.Partition.Value].Add(new LogRecord(r.Topic, r.Partition.Value, r.Offset.Value, msg, Header("broker-client"), Header("broker-id"), key));
            if (r.Offset.Value + 1 >= high[r.TopicPartition]) remaining.Remove(r.TopicPartition);
        }
        consumer.Close();
        return new LogSnapshot(result, truncated);
    }
}
