using Broker.Soak.Faults;

namespace Broker.Soak.Check;

/// <summary>The longest publish outage of each kind of fault.</summary>
public sealed record OutageRow(string Kind, int Count, double Longest, int LongestFault, string? Publisher, double Mean, double? LongestRecovery);

/// <summary>
/// A publisher's outage is the time between two consecutive acks (each publisher publishes at a
/// steady pace, so a gap longer than the pace is time it could not publish). A fault's outage is the
/// longest such gap of any publisher whose stalled part overlaps the fault's window: from its start
/// to the start of the next fault of the cluster (faults of the cluster never overlap; the next one
/// starts only after every publisher had an ack again). The stalled part of a gap begins
/// <see cref="Slack"/> after its last ack, so a gap that began just before a fault is that fault's.
/// </summary>
public static class Outages
{
    /// <summary>Seconds between acks that count as normal (the publishers' pace is 0.1–0.2 s).</summary>
    public const double Slack = 1.0;

    public static List<OutageRow> Compute(List<FaultEvent> faults, IReadOnlyList<(string Name, List<double> Acks)> publishers, double phaseStart, double phaseEnd)
    {
        var cluster = faults.Where(f => f.IsClusterFault).OrderBy(f => f.Start).ToList();
        for (var i = 0; i < cluster.Count; i++)
        {
            var until = i + 1 < cluster.Count ? cluster[i + 1].Start : phaseEnd;
            (cluster[i].Outage, cluster[i].OutageOf) = Longest(publishers, cluster[i].Start, until);
        }
        var rows = cluster.GroupBy(f => f.Kind).Select(g =>
        {
            var worst = g.MaxBy(f => f.Outage ?? 0)!;
            return new OutageRow(g.Key, g.Count(), worst.Outage ?? 0, worst.Number, worst.OutageOf, g.Average(f => f.Outage ?? 0),
                g.Max(f => f.Recovered - f.Start));
        }).OrderBy(r => r.Kind, StringComparer.Ordinal).ToList();
        var quietUntil = cluster.Count > 0 ? cluster[0].Start : phaseEnd;
        var (quiet, quietOf) = Longest(publishers, phaseStart, quietUntil, within: true);
        rows.Add(new OutageRow("none (before the first fault)", 0, quiet ?? 0, 0, quietOf, quiet ?? 0, null));
        return rows;
    }

    /// <param name="within">Only gaps that lie entirely in the window (else every gap that overlaps it).</param>
    private static (double?, string?) Longest(IReadOnlyList<(string Name, List<double> Acks)> publishers, double from, double until, bool within = false)
    {
        double? longest = null;
        string? of = null;
        foreach (var (name, acks) in publishers)
        {
            var sorted = acks.Order().ToList();
            for (var i = 0; i + 1 < sorted.Count; i++)
            {
                var (a, b) = (sorted[i], sorted[i + 1]);
                if (within ? a < from || b > until : b <= from || a + Slack >= until) continue;
                if (longest is null || b - a > longest)
                {
                    longest = b - a;
                    of = name;
                }
            }
        }
        return (longest, of);
    }
}
