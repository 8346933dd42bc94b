namespace Broker.Core.Security;

/// <summary>
/// A topic pattern in the namespace syntax: dot-separated segments, <c>*</c> matches exactly one
/// segment, <c>&gt;</c> (last only) one or more remaining segments, anything else itself. In token
/// grants a segment may contain <c>{sub}</c>, the token's own subject: <c>user.{sub}.&gt;</c> lets
/// each user reach only their own topics. A subject that is not a plain segment (empty, or with
/// <c>.</c>, <c>*</c>, <c>&gt;</c> or a character topic names do not allow) makes such a segment
/// match nothing, so no subject can widen a grant.
/// </summary>
public sealed class TopicPattern
{
    public const string SubjectPlaceholder = "{sub}";

    private readonly string[] _segments;

    public TopicPattern(string pattern)
    {
        Text = pattern;
        _segments = pattern.Split('.');
    }

    public string Text { get; }

    public bool Matches(string topic, string? subject = null) => Matches(topic.AsSpan(), subject);

    public bool Matches(ReadOnlySpan<char> topic, string? subject)
    {
        var i = 0;
        foreach (var range in topic.Split('.'))
        {
            if (i >= _segments.Length) return false;
            var s = _segments[i];
            if (s == ">" && i == _segments.Length - 1) return true;
            var part = topic[range];
            if (s != "*" && !SegmentMatches(s, part, subject)) return false;
            i++;
        }
        return i == _segments.Length;
    }

    private static bool SegmentMatches(string segment, ReadOnlySpan<char> part, string? subject)
    {
        if (!segment.Contains(SubjectPlaceholder, StringComparison.Ordinal)) return part.SequenceEqual(segment);
        if (!IsPlainSegment(subject)) return false;
        return part.SequenceEqual(segment.Replace(SubjectPlaceholder, subject, StringComparison.Ordinal));
    }

    /// <summary>Whether a subject can stand in a topic segment: 1–128 characters of [A-Za-z0-9_-].</summary>
    public static bool IsPlainSegment(string? subject)
    {
        if (subject is null || subject.Length is 0 or > 128) return false;
        foreach (var c in subject)
        {
            if (!(c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or '-')) return false;
        }
        return true;
    }

    public override string ToString() => Text;
}
