using System.Text;
using Broker.Core.Log;
using Broker.DevKafka;
using Confluent.Kafka;

namespace Broker.Tests.Log;

public sealed class KafkaPartitionerTests
{
    /// <summary>Values of Kafka's own test of Utils.murmur2 (Java).</summary>
    [Theory]
    [InlineData("21", -973932308)]
    [InlineData("foobar", -790332482)]
    [InlineData("a-little-bit-long-string", -985981536)]
    [InlineData("a-little-bit-longer-string", -1486304829)]
    [InlineData("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)]
    [InlineData("abc", 479470107)]
    public void Murmur2_is_kafkas(string key, int expected) => Assert.Equal(expected, KafkaPartitioner.Murmur2(Encoding.UTF8.GetBytes(key)));

    [Fact]
    public async Task The_partition_is_the_one_librdkafkas_murmur2_partitioner_picks()
    {
        NativeLibrdkafka.EnsureLoaded();
        using var cluster = MockKafkaCluster.Start("127.0.0.1", 0);
        const int partitions = 12;
        cluster.CreateTopic("p", partitions);
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            Partitioner = Partitioner.Murmur2Random,
        }).Build();
        for (var i = 0; i < 200; i++)
        {
            var key = Encoding.UTF8.GetBytes($"user.{i}.notifications");
            var report = await producer.ProduceAsync("p", new Message<byte[], byte[]> { Key = key, Value = [1] });
            Assert.Equal(report.Partition.Value, KafkaPartitioner.Partition(key, partitions));
        }
    }
}
