using System.Buffers;
using System.Buffers.Text;

namespace Broker.Client.Internal;

/// <summary>
/// Compares positions, which applications treat as opaque. The client knows their form (base64url
/// of a version byte 1, a varint partition count and one varint next-offset per partition) for one
/// purpose: a durable session resumes from its last <em>commit</em>, which may lie before the last
/// message this process already delivered; those messages are recognised and not delivered twice.
/// </summary>
internal static class Positions
{
    /// <summary>
    /// True when <paramref name="pos"/> is at or before <paramref name="last"/> in every partition,
    /// i.e. a message at <paramref name="pos"/> was already delivered by a stream that reached
    /// <paramref name="last"/>. False when either cannot be read: when in doubt, deliver.
    /// </summary>
    public static bool AtOrBefore(string pos, string last)
    {
        if (!TryDecode(pos, out var p) || !TryDecode(last, out var l)) return false;
        for (var i = 0; i < p.Length; i++)
        {
            if (p[i] > (i < l.Length ? l[i] : 0)) return false;
        }
        return true;
    }

    public static bool TryDecode(string text, out long[] next)
    {
        next = [];
        if (text.Length is 0 or > 16_000) return false;
        var raw = new byte[Base64Url.GetMaxDecodedLength(text.Length)];
        if (Base64Url.DecodeFromChars(text, raw, out var consumed, out var length) != OperationStatus.Done || consumed != text.Length) return false;
        var span = raw.AsSpan(0, length);
        if (span.Length < 2 || span[0] != 1) return false;
        var at = 1;
        if (!TryVarint(span, ref at, out var count) || count is 0 or > 1024) return false;
        var result = new long[count];
        for (var i = 0; i < result.Length; i++)
        {
            if (!TryVarint(span, ref at, out var v) || v > long.MaxValue) return false;
            result[i] = (long)v;
        }
        if (at != span.Length) return false;
        next = result;
        return true;
    }

    private static bool TryVarint(ReadOnlySpan<byte> s, ref int at, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64 && at < s.Length; shift += 7)
        {
            var b = s[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return true;
        }
        return false;
    }
}
