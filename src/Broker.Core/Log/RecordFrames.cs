using System.Text;
using System.Text.Unicode;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Log;

/// <summary>Turns a Kafka record into the <c>message</c> frame every subscriber of the topic receives.</summary>
public static class RecordFrames
{
    public static byte[] Build(string topic, ConsumeResult<byte[]?, byte[]?> record)
    {
        var pos = Position.Single(record.Offset.Value + 1).Encode();
        var m = record.Message;
        var ts = m.Timestamp.UnixTimestampMs;
        var key = m.Key is null ? null : DecodeKey(m.Key);
        var value = m.Value;
        if (value is null) return ServerFrames.Message(topic, pos, ts, default, key); // tombstone: data null
        if (IsBrokerJson(m.Headers) || ServerFrames.IsJsonValue(value)) return ServerFrames.Message(topic, pos, ts, value, key);
        if (Utf8.IsValid(value)) return ServerFrames.MessageText(topic, pos, ts, value, key);
        return ServerFrames.MessageText(topic, pos, ts, Encoding.ASCII.GetBytes(Convert.ToBase64String(value)), key);
    }

    /// <summary>True when the record's key is exactly <paramref name="key"/> (a record without a key never matches).</summary>
    public static bool KeyEquals(ConsumeResult<byte[]?, byte[]?> record, byte[] key) =>
        record.Message.Key is { } k && k.AsSpan().SequenceEqual(key);

    private static string DecodeKey(byte[] key) =>
        Utf8.IsValid(key) ? Encoding.UTF8.GetString(key) : Convert.ToBase64String(key);

    private static bool IsBrokerJson(Headers? headers)
    {
        if (headers is null) return false;
        for (var i = 0; i < headers.Count; i++)
        {
            var h = headers[i];
            if (h.Key == KafkaLog.ContentTypeHeader) return h.GetValueBytes().AsSpan().SequenceEqual(KafkaLog.JsonContentType);
        }
        return false;
    }
}
