namespace Broker.Core.Fanout;

/// <summary>A local subscriber of a node feed: a connection's subscription to one topic.</summary>
public interface IFeedSubscriber
{
    /// <summary>
    /// Called on the feed thread with a frame shared by every subscriber. Must not block.
    /// Returns false when the subscriber cannot take it (its connection is being closed as a
    /// slow consumer); the feed then drops the subscriber.
    /// </summary>
    bool TryDeliver(byte[] frame);

    /// <summary>
    /// When not null, only records whose key is exactly these bytes are delivered to this
    /// subscriber (read once, when it joins). On a multiplexed topic the key is the publish's own
    /// key (the <c>broker-key</c> header), not the record's Kafka key (the topic name).
    /// </summary>
    byte[]? KeyFilter => null;

    /// <summary>Whether this subscriber's frames carry the records' headers (read once, when it joins).</summary>
    bool WithHeaders => false;

    /// <summary>
    /// Called on the feed thread when the log no longer holds records this subscriber has not yet
    /// received (retention deleted them before the feed read them, or the log was reset). The
    /// subscriber has been removed from the feed; it must resume from its last position to learn
    /// what was lost (<c>recovered: false</c>). Must not block.
    /// </summary>
    void Lost() { }
}

/// <summary>
/// The answer to a join: either the subscriber is live, or it must first catch up to
/// <see cref="CatchUpTo"/> (next offsets per partition; for a multiplexed topic one offset, in its partition).
/// </summary>
public readonly record struct JoinResult(bool Joined, long[] CatchUpTo);

/// <summary>
/// One topic a node reads: the broker topic, its Kafka topic, its partitions, the local subscribers,
/// the records the feed has read (the sum of its next offsets over the partitions) and the sum of
/// the partitions' high watermarks as last seen by the reader (-1 when not yet known). A multiplexed
/// namespace's shared Kafka topic is one feed (<see cref="Topic"/> = its pattern's Kafka topic,
/// <see cref="Topics"/> = the broker topics with local subscribers).
/// </summary>
/// <param name="Misrouted">A shared feed's records skipped because their key names no topic of the partition they are in.</param>
public readonly record struct FeedState(string Topic, string KafkaTopic, int Subscribers, long Next, long HighWatermark, int Partitions = 1, int Topics = 1, bool Shared = false,
    long Misrouted = 0)
{
    /// <summary>Records in the log the feed has not yet read (0 when the watermark is unknown).</summary>
    public long Lag => HighWatermark < 0 ? 0 : Math.Max(0, HighWatermark - Next);
}

/// <summary>The local subscribers of one broker topic on one node.</summary>
public readonly record struct TopicSubscriberCount(string Topic, string KafkaTopic, int Subscribers);
