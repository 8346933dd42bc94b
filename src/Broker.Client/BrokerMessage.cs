using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Broker.Client;

/// <summary>A message delivered to a subscription.</summary>
public sealed class BrokerMessage
{
    private JsonElement? _data;

    internal BrokerMessage(string topic, string pos, long timestampMs, ReadOnlyMemory<byte> rawData, string? key, bool base64,
        IReadOnlyDictionary<string, string?>? headers, IReadOnlyList<string>? headersBase64, bool afterGap)
    {
        Topic = topic;
        Pos = pos;
        TimestampMs = timestampMs;
        RawData = rawData;
        Key = key;
        IsBase64 = base64;
        Headers = headers;
        HeadersBase64 = headersBase64;
        AfterGap = afterGap;
    }

    /// <summary>The topic.</summary>
    public string Topic { get; }

    /// <summary>The message's position: opaque; store it, commit it, hand it back as <c>since</c>.</summary>
    public string Pos { get; }

    /// <summary>The log's timestamp (unix milliseconds).</summary>
    public long TimestampMs { get; }

    /// <summary>The log's timestamp.</summary>
    public DateTimeOffset Timestamp => DateTimeOffset.FromUnixTimeMilliseconds(TimestampMs);

    /// <summary>The message key, if it has one.</summary>
    public string? Key { get; }

    /// <summary>The <c>data</c> value exactly as received: one JSON value in UTF-8.</summary>
    public ReadOnlyMemory<byte> RawData { get; }

    /// <summary>
    /// The <c>data</c> value. A record an external producer wrote that is not JSON arrives as a JSON
    /// string; one that is not UTF-8 as a base64 string with <see cref="IsBase64"/> set.
    /// </summary>
    public JsonElement Data => _data ??= RawData.IsEmpty ? default : JsonElement.Parse(RawData.Span);

    /// <summary>True when <see cref="Data"/> is a base64 string of a binary value (<c>"encoding":"base64"</c>): see <see cref="GetBinaryData"/>.</summary>
    public bool IsBase64 { get; }

    /// <summary>The Kafka record headers (subscriptions with <see cref="SubscribeOptions.Headers"/> only); null when there are none.</summary>
    public IReadOnlyDictionary<string, string?>? Headers { get; }

    /// <summary>Names of <see cref="Headers"/> whose values are base64 strings of binary values.</summary>
    public IReadOnlyList<string>? HeadersBase64 { get; }

    /// <summary>
    /// True for the first message after a resume that could not deliver everything (<c>recovered:
    /// false</c>: retention deleted messages in between, or the log was reset): messages before it
    /// are missing. <see cref="BrokerSubscription.Resumed"/> reports the same with details.
    /// </summary>
    public bool AfterGap { get; }

    /// <summary>Deserialises <see cref="RawData"/> with source-generated (or other) metadata.</summary>
    public T? GetData<T>(JsonTypeInfo<T> typeInfo) => JsonSerializer.Deserialize(RawData.Span, typeInfo);

    /// <summary>
    /// The value as bytes: decoded from base64 when <see cref="IsBase64"/>, else the UTF-8 of a string
    /// value, else the raw JSON.
    /// </summary>
    public byte[] GetBinaryData()
    {
        if (IsBase64) return Data.GetBytesFromBase64();
        return Data.ValueKind == JsonValueKind.String ? Encoding.UTF8.GetBytes(Data.GetString()!) : RawData.ToArray();
    }

    /// <inheritdoc />
    public override string ToString() => $"{Topic}@{Pos}: {Encoding.UTF8.GetString(RawData.Span)}";
}
