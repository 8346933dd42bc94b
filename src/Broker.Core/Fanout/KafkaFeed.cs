using System.Diagnostics;
using Confluent.Kafka;

namespace Broker.Core.Fanout;

/// <summary>
/// What a node reads of one Kafka topic and who it hands the records to. The feed thread
/// dispatches records under <see cref="Gate"/>; joins and leaves take the same lock from any
/// thread, so a subscriber joins between two records (no gap, no duplicate at the seam) without
/// waiting for the feed thread. Assignment changes happen on the feed thread only.
/// </summary>
internal abstract class KafkaFeed(string kafkaTopic, long[] next)
{
    public readonly string KafkaTopic = kafkaTopic;

    /// <summary>Guards everything below and the subclasses' subscribers.</summary>
    public readonly Lock Gate = new();

    /// <summary>Per partition, the offset of the next record this feed dispatches (its position).</summary>
    public long[] Next = next;

    /// <summary>The feed was unassigned (idle past its linger): a join must go through the feed thread again.</summary>
    public bool Removed;

    /// <summary>When the last subscriber left (Stopwatch ticks); 0 while it has subscribers.</summary>
    public long EmptySince;

    public int Partitions => Next.Length;

    /// <summary>Read for as long as the node runs, with or without subscribers (not dropped after <c>feed-linger</c>).</summary>
    public virtual bool Permanent => false;

    /// <summary>Live subscribers of the feed (every topic of a shared feed).</summary>
    public abstract int Subscribers { get; }

    /// <summary>Hands one record to its subscribers; returns how many frames were delivered.</summary>
    public abstract int Dispatch(ConsumeResult<byte[]?, byte[]?> record);

    /// <summary>
    /// The log no longer holds the feed's next offset in <paramref name="partition"/> (retained:
    /// <paramref name="low"/>..<paramref name="high"/>; high -1: unknown). Every subscriber that
    /// would miss records is removed and told; returns how many.
    /// </summary>
    public abstract int LoseBefore(int partition, long low, long high);

    /// <summary>The topic gained partitions: the feed reads the new ones from their beginning.</summary>
    public virtual void Widen(int partitions)
    {
        if (partitions <= Next.Length) return;
        var wider = new long[partitions];
        Next.CopyTo(wider, 0);
        Next = wider;
    }

    /// <summary>Periodic housekeeping on the feed thread (a shared feed forgets idle topics).</summary>
    public virtual void Sweep(long now) { }

    /// <summary>Adds this feed's rows (one per broker topic with subscribers, at most <paramref name="limit"/> in all) to <paramref name="into"/>.</summary>
    public abstract void Describe(List<TopicSubscriberCount> into, int limit);

    /// <summary>Its row in the node's feed list.</summary>
    public abstract FeedState State(long highWatermarks);

    protected void NoteEmpty()
    {
        if (Subscribers == 0) EmptySince = Stopwatch.GetTimestamp();
    }

    internal static long[] Widened(long[] position, int partitions)
    {
        var copy = new long[Math.Max(partitions, position.Length)];
        position.CopyTo(copy, 0);
        return copy;
    }
}
