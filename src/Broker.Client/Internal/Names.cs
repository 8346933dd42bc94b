namespace Broker.Client;

/// <summary>The broker's rules for topic names and identities (docs/protocol.md), checked before anything is sent.</summary>
internal static class Names
{
    public const int MaxTopicLength = 200;

    public static bool IsValidTopic(ReadOnlySpan<char> name) =>
        name.Length is > 0 and <= MaxTopicLength && name is not "." and not ".." && AllAllowed(name);

    /// <summary>Client identities and session ids: 1–128 characters of [A-Za-z0-9._-].</summary>
    public static bool IsValidIdentity(ReadOnlySpan<char> id) => id.Length is > 0 and <= 128 && AllAllowed(id);

    /// <summary>HTTP Idempotency-Key: 1–56 characters of [A-Za-z0-9._-].</summary>
    public static bool IsValidIdempotencyKey(ReadOnlySpan<char> key) => key.Length is > 0 and <= 56 && AllAllowed(key);

    public static void ThrowIfInvalidTopic(string topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (!IsValidTopic(topic))
            throw new ArgumentException($"invalid topic '{topic}': 1-{MaxTopicLength} characters of A-Z a-z 0-9 . _ -", nameof(topic));
    }

    private static bool AllAllowed(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or '-')) return false;
        }
        return true;
    }
}
