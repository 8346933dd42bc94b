using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Broker.Client;

/// <summary>One publish of an HTTP batch (<see cref="BrokerHttpPublisher.PublishBatchAsync"/>).</summary>
public sealed class HttpPublishItem
{
    private HttpPublishItem(string topic, byte[] data, string? key)
    {
        Names.ThrowIfInvalidTopic(topic);
        Topic = topic;
        Data = data;
        Key = key;
    }

    /// <summary>The topic.</summary>
    public string Topic { get; }

    /// <summary>The data: one JSON value in UTF-8.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The key, if any.</summary>
    public string? Key { get; }

    /// <summary>An item whose data is <paramref name="data"/>.</summary>
    public static HttpPublishItem Create(string topic, JsonElement data, string? key = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer)) data.WriteTo(writer);
        return new HttpPublishItem(topic, buffer.WrittenSpan.ToArray(), key);
    }

    /// <summary>An item whose data is one JSON value given as UTF-8 bytes (validated here).</summary>
    public static HttpPublishItem Create(string topic, ReadOnlyMemory<byte> utf8Json, string? key = null)
    {
        Internal.JsonValue.ThrowIfNotOneValue(utf8Json.Span, nameof(utf8Json));
        return new HttpPublishItem(topic, utf8Json.ToArray(), key);
    }

    /// <summary>An item whose data is <paramref name="data"/> serialised with <paramref name="typeInfo"/> (source-generation friendly).</summary>
    public static HttpPublishItem Create<T>(string topic, T data, JsonTypeInfo<T> typeInfo, string? key = null)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return new HttpPublishItem(topic, JsonSerializer.SerializeToUtf8Bytes(data, typeInfo), key);
    }
}
