namespace Broker.Protocol;

/// <summary>Topic name rules: 1–200 chars of [A-Za-z0-9._-], never "." or ".." (Kafka-legal).</summary>
public static class TopicName
{
    public const int MaxLength = 200;

    public static bool IsValid(ReadOnlySpan<char> name)
    {
        if (name.Length is 0 or > MaxLength) return false;
        if (name is "." or "..") return false;
        foreach (var c in name)
        {
            if (!IsAllowed(c)) return false;
        }
        return true;
    }

    /// <summary>Client identities (<c>?client=</c>) and session ids: 1–128 chars of [A-Za-z0-9._-].</summary>
    public static bool IsValidIdentity(ReadOnlySpan<char> id)
    {
        if (id.Length is 0 or > 128) return false;
        foreach (var c in id)
        {
            if (!IsAllowed(c)) return false;
        }
        return true;
    }

    private static bool IsAllowed(char c) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or '-';
}
