using Broker.Core.Log;
using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Topics;
using System.Text;
using System.Text.Unicode;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Fanout;

/// <summary>
/// Turns a Kafka record into the <c>message</c> frame every subscriber of the topic receives. Every
/// value is validated before it is framed as JSON, whoever wrote it (a <c>broker-ct</c> header is
/// never trusted): a value that is not exactly one JSON value is delivered as a string or base64.
/// </summary>
public static class RecordFrames
{
    /// <summary>
    /// The frame of <paramref name="record"/> at position <paramref name="pos"/> (the encoded next
    /// offsets of every partition once the record is seen); with <paramref name="withHeaders"/> it
    /// carries the record's headers (except the broker's own) as <c>headers</c>. A record of a
    /// multiplexed namespace (<paramref name="shared"/>) has the broker topic as its Kafka key: the
    /// message's <c>key</c> is then the publish's own key, from the <c>broker-key</c> header.
    /// </summary>
    public static byte[] Build(string topic, ConsumeResult<byte[]?, byte[]?> record, string pos, bool withHeaders = false, bool shared = false)
    {
        var m = record.Message;
        var ts = m.Timestamp.UnixTimestampMs;
        var keyBytes = shared ? HeaderValue(m.Headers, KafkaLog.KeyHeader) : m.Key;
        var key = keyBytes is null ? null : DecodeKey(keyBytes);
        var headers = withHeaders ? VisibleHeaders(m.Headers) : null;
        var value = m.Value;
        if (value is null) return ServerFrames.Message(topic, pos, ts, default, key, headers); // tombstone: data null
        if (ServerFrames.IsJsonValue(value)) return ServerFrames.Message(topic, pos, ts, value, key, headers);
        if (Utf8.IsValid(value)) return ServerFrames.MessageText(topic, pos, ts, value, key, headers);
        return ServerFrames.MessageBinary(topic, pos, ts, value, key, headers);
    }

    /// <summary>True when the record has headers a subscriber asking for them would see (the frames with and without them differ).</summary>
    public static bool HasVisibleHeaders(ConsumeResult<byte[]?, byte[]?> record)
    {
        var headers = record.Message.Headers;
        if (headers is null) return false;
        for (var i = 0; i < headers.Count; i++)
            if (!IsInternal(headers[i].Key)) return true;
        return false;
    }

    /// <summary>
    /// True when the record's key is exactly <paramref name="key"/> (a record without a key never
    /// matches); on a multiplexed namespace (<paramref name="shared"/>) the key is the <c>broker-key</c> header.
    /// </summary>
    public static bool KeyEquals(ConsumeResult<byte[]?, byte[]?> record, byte[] key, bool shared = false) =>
        (shared ? HeaderValue(record.Message.Headers, KafkaLog.KeyHeader) : record.Message.Key) is { } k && k.AsSpan().SequenceEqual(key);

    /// <summary>The record's headers minus the broker's own; a name given twice keeps its last value.</summary>
    private static List<KeyValuePair<string, byte[]?>>? VisibleHeaders(Headers? headers)
    {
        if (headers is null) return null;
        List<KeyValuePair<string, byte[]?>>? visible = null;
        for (var i = 0; i < headers.Count; i++)
        {
            var h = headers[i];
            if (IsInternal(h.Key)) continue;
            visible ??= [];
            var at = visible.FindIndex(v => v.Key == h.Key);
            var entry = new KeyValuePair<string, byte[]?>(h.Key, h.GetValueBytes());
            if (at >= 0) visible[at] = entry;
            else visible.Add(entry);
        }
        return visible;
    }

    private static bool IsInternal(string name) =>
        name is KafkaLog.ContentTypeHeader or KafkaLog.ClientHeader or KafkaLog.RequestIdHeader or KafkaLog.KeyHeader;

    private static string DecodeKey(byte[] key) =>
        Utf8.IsValid(key) ? Encoding.UTF8.GetString(key) : Convert.ToBase64String(key);

    /// <summary>The value of the last header named <paramref name="name"/>; null when there is none.</summary>
    private static byte[]? HeaderValue(Headers? headers, string name)
    {
        if (headers is null) return null;
        for (var i = headers.Count - 1; i >= 0; i--)
        {
            if (headers[i].Key == name) return headers[i].GetValueBytes();
        }
        return null;
    }
}
