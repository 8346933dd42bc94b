using Broker.Core.Log;
using Broker.Core.Settings;

namespace Broker.Core.Fanout;

/// <summary>Starting to read a multiplexed namespace's shared Kafka topic on this node.</summary>
public static class SharedFeeds
{
    /// <summary>
    /// Makes sure the node reads the shared Kafka topic of <paramref name="mapping"/>: the first
    /// subscriber of the namespace on a node creates the Kafka topic if needed and starts the feed at
    /// the log's end; every later subscriber (of any topic of the namespace) finds it running and
    /// costs no Kafka round trip.
    /// </summary>
    public static async Task EnsureReadingAsync(FeedHub feeds, KafkaLog log, TopicMapping mapping, CancellationToken ct)
    {
        if (feeds.IsReading(mapping.KafkaTopic)) return;
        await log.EnsureTopicAsync(mapping, ct).ConfigureAwait(false);
        var heads = await log.QueryHeadsAsync(mapping.KafkaTopic, ct).ConfigureAwait(false);
        await feeds.StartSharedAsync(mapping.KafkaTopic, heads.High).WaitAsync(ct).ConfigureAwait(false);
    }
}
