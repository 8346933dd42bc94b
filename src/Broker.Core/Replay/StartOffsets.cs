using Broker.Core.Log;
using Broker.Protocol;

namespace Broker.Core.Replay;

/// <summary>Where a subscription starts reading: the next offset of every partition.</summary>
public static class StartOffsets
{
    /// <summary>
    /// The start of <paramref name="s"/> on a topic whose partitions hold <paramref name="heads"/>:
    /// null when <c>since</c> does not fit the topic. <c>last</c> counts per partition here; across
    /// several partitions the caller narrows it to the last N in merge order
    /// (<see cref="CatchUpReader.StartOfLastAsync"/>).
    /// </summary>
    public static (long[]? Start, bool? Recovered) For(SubscribeRequest s, TopicHeads heads)
    {
        var n = heads.Partitions;
        var start = new long[n];
        if (s.Since is { } since)
        {
            // A position may lack partitions added to the topic since (nothing of them was seen);
            // one with more partitions than the topic is not of this topic.
            if (since.PartitionCount > n) return (null, null);
            var recovered = true;
            for (var p = 0; p < n; p++)
            {
                var next = p < since.PartitionCount ? since.NextOffset(p) : 0;
                // Older than retention, or from a log that no longer holds it: deliver what is retained.
                if (next < heads.Low[p] || next > heads.High[p])
                {
                    recovered = false;
                    next = heads.Low[p];
                }
                start[p] = next;
            }
            return (start, recovered);
        }
        for (var p = 0; p < n; p++)
        {
            start[p] = s.Last is { } last ? Math.Max(heads.Low[p], heads.High[p] - last)
                : s.From == StartFrom.Earliest ? heads.Low[p] : heads.High[p];
        }
        return (start, null);
    }
}
