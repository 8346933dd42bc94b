using System.Diagnostics;
using System.Text;
using Confluent.Kafka;

namespace Broker.Bench;

/// <summary>
/// Issue 11's history target: a topic's <c>last: N</c> on a shared (multiplexed) Kafka topic that
/// holds a million records of other topics. The topic's own records are published through the
/// broker first (which creates the shared Kafka topic on a multiplexed namespace); then the fill is
/// produced straight to the embedded log's Kafka port with Confluent.Kafka — keys = broker topic
/// names, murmur2 partitioner, as any service addressing a broker topic would — so the topic's
/// records lie under ~fill/partitions records of others in their partition. Then fresh connections
/// subscribe with <c>last: N</c> one after the other; each is timed from sending the subscribe to
/// the Nth message, and must get exactly the topic's last N, in order.
/// </summary>
public static class LastN
{
    public static async Task Run(Options o, Result r, Probe probe, CancellationToken deadline)
    {
        int history = o.Int("history", 150), last = o.Int("last", 100), repeats = o.Int("repeats", 3);
        int fill = o.Int("fill", 1_000_000), fillTopics = o.Int("fill-topics", 10_000), fillSize = o.Int("fill-size", 16);
        int kafkaPort = o.Int("kafka-port", 0), partitions = o.Int("partitions", 12);
        var kafkaTopic = o.Str("kafka-topic", "broker.mx");
        r.Param("topic records", history).Param("last", last).Param("repeats", repeats)
         .Param("fill records", fill).Param("fill topics", fillTopics).Param("fill record bytes", fillSize).Param("shared Kafka topic", kafkaTopic);
        if (o.Target != Target.Broker)
        {
            r.Metric("note", "n/a: broker only (the peers keep no history)");
            return;
        }
        if (last > history) throw new ArgumentException("--last must not exceed --history");

        var topic = Scenarios.Topic(o, "last");
        var pub = await Publisher.OpenAsync(o.Endpoint, [topic], o.Payload, 256, 0, deadline);
        try
        {
            await pub.RunAsync(0, history, 0, TimeSpan.FromSeconds(60), deadline);
            if (pub.Acked != history) r.Problem($"only {pub.Acked} of {history} topic records acked");
        }
        finally
        {
            await pub.CloseAsync();
        }

        if (fill > 0)
        {
            if (kafkaPort == 0) r.Problem("--fill needs --kafka-port (the embedded log's Kafka port)");
            else
            {
                var a = probe.Take();
                var bootstrap = $"127.0.0.1:{kafkaPort}";
                var (seconds, errors) = await Task.Run(() => Fill(bootstrap, kafkaTopic, o.Prefix, fill, fillTopics, fillSize, deadline), deadline);
                var cpu = Probe.Between(a, probe.Take());
                r.Metric("fill s", seconds).Metric("fill records/s", fill / seconds);
                var (parts, retained) = Retained(bootstrap, kafkaTopic);
                r.Metric("shared topic partitions", parts).Metric("shared topic records retained", retained);
                if (parts != partitions) r.Metric("note", $"the shared Kafka topic has {parts} partitions, not {partitions}: no multiplexed namespace (plain mapping)?");
                if (probe.HasServer) r.Metric("server CPU cores during fill", cpu.ServerCores);
                if (errors > 0) r.Problem($"{errors} fill records not delivered");
            }
        }
        if (probe.HasServer) r.Metric("server RSS MiB after fill", probe.ServerRss() / 1048576.0);

        // Right after the fill (the strict figure: the node may still be reading it), then once more
        // after `settle` seconds without writes (the partition simply holds the records).
        await Series("", r);
        var settle = o.Int("settle", 10);
        if (settle > 0)
        {
            r.Param("settle s", settle);
            await Task.Delay(TimeSpan.FromSeconds(settle), deadline);
            await Series("settled ", r);
        }

        async Task Series(string label, Result r)
        {
            var times = new List<double>();
            for (var i = 0; i < repeats; i++)
            {
                var s = await Subscriber.OpenAsync(o.Endpoint, 0, deadline);
                try
                {
                    s.Expect(0, last, 1, history - last); // exactly the sequence numbers history-last … history-1
                    var start = Stopwatch.GetTimestamp();
                    await s.SubscribeAsync([topic], last, 1, deadline);
                    try
                    {
                        await s.Run.Done.WaitAsync(TimeSpan.FromSeconds(30), deadline);
                    }
                    catch (TimeoutException)
                    {
                        r.Problem($"{label}subscribe {i + 1}: {s.Run.Distinct} of the last {last} within 30 s");
                        continue;
                    }
                    if (s.Error is not null) { r.Problem($"{label}subscribe {i + 1}: error {s.Error}"); continue; }
                    times.Add(Stopwatch.GetElapsedTime(start, s.Run.DoneAt).TotalMilliseconds);
                    await Task.Delay(200, deadline); // anything beyond the last N would arrive now
                    if (s.Run.Foreign > 0) r.Problem($"{label}subscribe {i + 1}: {s.Run.Foreign} messages outside the last {last}");
                    if (s.Run.OutOfOrder > 0) r.Problem($"{label}subscribe {i + 1}: {s.Run.OutOfOrder} out of order");
                    if (s.Run.Duplicates > 0) r.Problem($"{label}subscribe {i + 1}: {s.Run.Duplicates} duplicates");
                }
                finally
                {
                    await s.CloseAsync();
                }
            }
            if (times.Count > 0)
            {
                r.Metric($"{label}last {last} first ms", times[0]);
                r.Metric($"{label}last {last} median ms", times.Order().ElementAt(times.Count / 2));
                r.Metric($"{label}last {last} all ms", string.Join(" / ", times.Select(t => t.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture))));
            }
        }
    }

    /// <summary>Partitions of the Kafka topic and the records it retains (high − low watermark, summed).</summary>
    private static (int Partitions, long Records) Retained(string bootstrap, string kafkaTopic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        var topic = admin.GetMetadata(kafkaTopic, TimeSpan.FromSeconds(10)).Topics.FirstOrDefault();
        if (topic is null) return (0, 0);
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "bench-lastn" }).Build();
        long records = 0;
        foreach (var p in topic.Partitions)
        {
            var w = consumer.QueryWatermarkOffsets(new TopicPartition(kafkaTopic, p.PartitionId), TimeSpan.FromSeconds(10));
            records += w.High - w.Low;
        }
        return (topic.Partitions.Count, records);
    }

    /// <summary>Produces the fill; returns the seconds it took and how many records failed.</summary>
    private static (double Seconds, long Errors) Fill(string bootstrap, string kafkaTopic, string prefix, int count, int topics, int size, CancellationToken ct)
    {
        // The shared Kafka topic is the broker's (created on the first publish above, with the
        // namespace's partitions; the embedded log has no CreateTopics API and auto-creates unknown
        // topics with 4 partitions, which is what happens with plain per-topic mapping).
        var keys = Enumerable.Range(0, topics).Select(i => Encoding.UTF8.GetBytes($"{prefix}.fill.{i}")).ToArray();
        var value = Encoding.UTF8.GetBytes("{\"f\":\"" + new string('x', Math.Max(0, size - 8)) + "\"}");
        var config = new ProducerConfig
        {
            BootstrapServers = bootstrap,
            Partitioner = Partitioner.Murmur2Random, // Java's default: the partition a broker topic's records live in
            Acks = Acks.All,
            LingerMs = 20,
            BatchSize = 1_000_000,
            QueueBufferingMaxMessages = 500_000,
        };
        long errors = 0;
        var start = Stopwatch.GetTimestamp();
        using var producer = new ProducerBuilder<byte[], byte[]>(config).Build();
        Action<DeliveryReport<byte[], byte[]>> report = d => { if (d.Error.IsError) Interlocked.Increment(ref errors); };
        for (var i = 0; i < count; i++)
        {
            while (true)
            {
                try
                {
                    producer.Produce(kafkaTopic, new Message<byte[], byte[]> { Key = keys[i % topics], Value = value }, report);
                    break;
                }
                catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    ct.ThrowIfCancellationRequested();
                    producer.Poll(TimeSpan.FromMilliseconds(50));
                }
            }
        }
        while (producer.Flush(TimeSpan.FromSeconds(1)) > 0) ct.ThrowIfCancellationRequested();
        return (Stopwatch.GetElapsedTime(start).TotalSeconds, errors);
    }
}
