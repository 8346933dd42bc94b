using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Broker.Core.Publish;

/// <summary>
/// A 64-bit fingerprint of a publish's data and key, to tell a retry (same data and key) from a
/// reused request id (other data or key). Computed the same way from a publish and from the record
/// it became (value and key bytes), so a writer that reads the log back recognises its publishes.
/// SHA-256 truncated to 64 bits: deterministic on every node and version, and an accidental
/// collision (a conflicting publish taken for a retry) has a chance of 2^-64.
/// </summary>
public static class PublishFingerprint
{
    /// <summary>The fingerprint of a publish: its data (the record value) and its key (null: no key).</summary>
    public static ulong Of(ReadOnlySpan<byte> data, string? key)
    {
        if (key is null) return Of(data, ReadOnlySpan<byte>.Empty, hasKey: false);
        Span<byte> buffer = key.Length <= 256 ? stackalloc byte[Encoding.UTF8.GetMaxByteCount(key.Length)] : new byte[Encoding.UTF8.GetByteCount(key)];
        var n = Encoding.UTF8.GetBytes(key, buffer);
        return Of(data, buffer[..n], hasKey: true);
    }

    /// <summary>The fingerprint of a record: its value and its key bytes (null: no key).</summary>
    public static ulong Of(ReadOnlySpan<byte> value, byte[]? key) => Of(value, key, key is not null);

    private static ulong Of(ReadOnlySpan<byte> data, ReadOnlySpan<byte> key, bool hasKey)
    {
        // Hashing the two parts separately needs no buffer for their concatenation; the key's
        // presence is hashed with it, so "no key" and "" differ.
        Span<byte> dataHash = stackalloc byte[SHA256.HashSizeInBytes];
        Span<byte> keyHash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(data, dataHash);
        if (hasKey)
        {
            Span<byte> both = stackalloc byte[2 * SHA256.HashSizeInBytes];
            SHA256.HashData(key, both);
            dataHash.CopyTo(both[SHA256.HashSizeInBytes..]);
            SHA256.HashData(both, keyHash);
            return BinaryPrimitives.ReadUInt64LittleEndian(keyHash);
        }
        return BinaryPrimitives.ReadUInt64LittleEndian(dataHash);
    }
}
