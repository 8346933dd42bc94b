using Akka.Configuration;
using Akka.Configuration.Hocon;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>
/// Keys under <c>broker.</c> that no setting reads (typos, keys of another version): the defaults
/// (hocon/broker.conf) list every key, so anything else is reported with the nearest known key,
/// e.g. "unknown key broker.http.prot — did you mean broker.http.port?". A warning, not an error:
/// the node starts with the defaults for what was meant. An empty object in the defaults is a map
/// whose keys are the user's own (<c>broker.kafka.client-config</c>: librdkafka properties): what
/// is under it is not reported.
/// </summary>
public static class UnknownKeys
{
    private const string Root = "broker";
    private const string NamespacesKey = "broker.namespaces";

    /// <summary>One warning per unknown key of <paramref name="config"/>, in the order of the configuration.</summary>
    public static IReadOnlyList<string> Find(Config config)
    {
        var known = Leaves(BrokerDefaults.Config.GetValue(Root), Root).Select(l => l.Path).ToList();
        var maps = Maps(BrokerDefaults.Config.GetValue(Root), Root).ToList();
        var knownSet = known.ToHashSet(StringComparer.Ordinal);
        var warnings = new List<string>();
        if (!config.HasPath(Root)) return warnings;
        foreach (var (path, value) in Leaves(config.GetValue(Root), Root))
        {
            if (maps.Any(m => path.StartsWith(m + ".", StringComparison.Ordinal))) continue;
            if (!knownSet.Contains(path))
            {
                var nearest = Nearest(path, known);
                warnings.Add(nearest is null
                    ? $"unknown key {path} (no setting has this name; hocon/broker.conf lists them all)"
                    : $"unknown key {path} — did you mean {nearest}?");
            }
            else if (path == NamespacesKey && value.IsArray())
            {
                var items = value.GetArray();
                for (var i = 0; i < items.Count; i++)
                {
                    if (!items[i].IsObject()) continue; // binding reports it
                    foreach (var field in items[i].GetObject().Items.Keys.Where(f => !NamespaceRule.Fields.Contains(f)))
                    {
                        var nearest = Nearest(field, NamespaceRule.Fields);
                        warnings.Add($"unknown key {path}[{i}].{field}" + (nearest is null ? $" (a namespace has {string.Join(", ", NamespaceRule.Fields)})" : $" — did you mean {nearest}?"));
                    }
                }
            }
        }
        return warnings;
    }

    /// <summary>The paths of the empty objects under <paramref name="value"/> (maps of the user's own keys).</summary>
    private static IEnumerable<string> Maps(HoconValue? value, string path)
    {
        if (value is null || !value.IsObject()) yield break;
        var items = value.GetObject().Items;
        if (items.Count == 0) yield return path;
        foreach (var (key, child) in items)
            foreach (var map in Maps(child, path + "." + key))
                yield return map;
    }

    /// <summary>The paths of the values (not objects) under <paramref name="value"/>; lists are values.</summary>
    private static IEnumerable<(string Path, HoconValue Value)> Leaves(HoconValue? value, string path)
    {
        if (value is null) yield break;
        if (!value.IsObject())
        {
            yield return (path, value);
            yield break;
        }
        foreach (var (key, child) in value.GetObject().Items)
            foreach (var leaf in Leaves(child, path + "." + key))
                yield return leaf;
    }

    /// <summary>
    /// The known key most like <paramref name="key"/>: a small edit away, or with the same last
    /// segment or as a prefix (broker.kafka.port for broker.kafka.embedded.port); among equals, the one
    /// sharing most leading segments.
    /// </summary>
    private static string? Nearest(string key, IEnumerable<string> known)
    {
        string? best = null;
        (int Distance, int Shared) bestScore = (int.MaxValue, 0);
        var last = key[(key.LastIndexOf('.') + 1)..];
        foreach (var candidate in known)
        {
            var distance = Distance(key, candidate);
            if (candidate.EndsWith("." + last, StringComparison.Ordinal) || candidate.StartsWith(key + "-", StringComparison.Ordinal))
                distance = Math.Min(distance, 3);
            var shared = SharedSegments(key, candidate);
            if (distance < bestScore.Distance || (distance == bestScore.Distance && shared > bestScore.Shared))
            {
                best = candidate;
                bestScore = (distance, shared);
            }
        }
        return bestScore.Distance <= Math.Max(3, key.Length / 5) ? best : null;
    }

    private static int SharedSegments(string a, string b)
    {
        var x = a.Split('.');
        var y = b.Split('.');
        var n = 0;
        while (n < x.Length && n < y.Length && x[n] == y[n]) n++;
        return n;
    }

    /// <summary>Edit distance with transpositions (optimal string alignment): "prot" is one edit from "port".</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }
}
