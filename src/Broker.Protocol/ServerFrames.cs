using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace Broker.Protocol;

/// <summary>
/// Encodes server → client frames (docs/protocol.md, "Server → client") as UTF-8 JSON.
/// Each call returns a fresh array that may be shared by every subscriber of a node:
/// a delivered message is encoded once per node, not once per subscriber.
/// </summary>
public static class ServerFrames
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    private static Utf8JsonWriter Rent()
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        if (t_writer is null) t_writer = new Utf8JsonWriter(buffer, WriterOptions);
        else t_writer.Reset(buffer);
        return t_writer;
    }

    private static byte[] Finish(Utf8JsonWriter w)
    {
        w.Flush();
        var bytes = t_buffer!.WrittenSpan.ToArray();
        if (t_buffer.Capacity > 256 * 1024) t_buffer = null; // do not pin a huge buffer to the thread
        return bytes;
    }

    private static void Id(Utf8JsonWriter w, string? id)
    {
        if (id is not null) w.WriteString("id"u8, id);
    }

    /// <param name="since">
    /// Given for a subscription a durable session restored: the position delivery resumes strictly
    /// after (the last commit, or where the subscription started), so a client can tell which of the
    /// messages that follow it has already processed.
    /// </param>
    public static byte[] Subscribed(string? id, string topic, Position head, bool? recovered, Position? since = null)
    {
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "subscribed"u8);
        Id(w, id);
        w.WriteString("topic"u8, topic);
        w.WriteString("pos"u8, head.Encode());
        if (recovered is { } r) w.WriteBoolean("recovered"u8, r);
        if (since is { } from) w.WriteString("since"u8, from.Encode());
        w.WriteEndObject();
        return Finish(w);
    }

    public static byte[] Unsubscribed(string? id, string topic)
    {
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "unsubscribed"u8);
        Id(w, id);
        w.WriteString("topic"u8, topic);
        w.WriteEndObject();
        return Finish(w);
    }

    public static byte[] Ack(string? id, string topic, string pos)
    {
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "ack"u8);
        Id(w, id);
        w.WriteString("topic"u8, topic);
        w.WriteString("pos"u8, pos);
        w.WriteEndObject();
        return Finish(w);
    }

    public static byte[] Pong(string? id)
    {
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "pong"u8);
        Id(w, id);
        w.WriteEndObject();
        return Finish(w);
    }

    public static byte[] Error(string? id, string code, string message)
    {
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "error"u8);
        Id(w, id);
        w.WriteString("code"u8, code);
        w.WriteString("message"u8, message);
        w.WriteEndObject();
        return Finish(w);
    }

    public static byte[] Error(string? id, ProtocolError error)
    {
        if (error.RetryAfterMs is not { } retry) return Error(id, error.Code, error.Message);
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "error"u8);
        Id(w, id);
        w.WriteString("code"u8, error.Code);
        w.WriteString("message"u8, error.Message);
        w.WriteNumber("retry_after_ms"u8, retry);
        w.WriteEndObject();
        return Finish(w);
    }

    /// <summary>The answer to an accepted <c>auth</c> frame: the token's subject and expiry (unix seconds; absent when the token has none).</summary>
    public static byte[] Authed(string? id, string subject, long? exp)
    {
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "authed"u8);
        Id(w, id);
        w.WriteString("sub"u8, subject);
        if (exp is { } e) w.WriteNumber("exp"u8, e);
        w.WriteEndObject();
        return Finish(w);
    }

    /// <summary>Sent once, <c>broker.auth.refresh-notice</c> before the token expires: send an <c>auth</c> frame with a new token.</summary>
    public static byte[] TokenExpiring(long exp)
    {
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "token_expiring"u8);
        w.WriteNumber("exp"u8, exp);
        w.WriteEndObject();
        return Finish(w);
    }

    /// <summary>
    /// A delivered message. <paramref name="jsonData"/> must be one valid JSON value
    /// (the broker validated it on publish, or the feed validated an external record);
    /// when <paramref name="jsonData"/> is not JSON, pass it as <paramref name="textData"/> instead
    /// and it is written as a JSON string. <paramref name="headers"/>: see <see cref="EndMessage"/>.
    /// </summary>
    public static byte[] Message(string topic, string pos, long timestampMs, ReadOnlySpan<byte> jsonData, string? key,
        IReadOnlyList<KeyValuePair<string, byte[]?>>? headers = null)
    {
        var w = StartMessage(topic, pos, timestampMs);
        w.WritePropertyName("data"u8);
        if (jsonData.IsEmpty) w.WriteNullValue();
        else w.WriteRawValue(jsonData, skipInputValidation: true);
        return EndMessage(w, key, headers);
    }

    /// <summary>A delivered message whose value is not JSON: written as a JSON string (UTF-8 text).</summary>
    public static byte[] MessageText(string topic, string pos, long timestampMs, ReadOnlySpan<byte> utf8Text, string? key,
        IReadOnlyList<KeyValuePair<string, byte[]?>>? headers = null)
    {
        var w = StartMessage(topic, pos, timestampMs);
        w.WriteString("data"u8, utf8Text);
        return EndMessage(w, key, headers);
    }

    /// <summary>
    /// A delivered message whose value is neither JSON nor UTF-8 text: <c>data</c> is the value in
    /// base64 (standard alphabet, padded) and <c>encoding</c> is <c>"base64"</c>.
    /// </summary>
    public static byte[] MessageBinary(string topic, string pos, long timestampMs, ReadOnlySpan<byte> value, string? key,
        IReadOnlyList<KeyValuePair<string, byte[]?>>? headers = null)
    {
        var w = StartMessage(topic, pos, timestampMs);
        w.WriteBase64String("data"u8, value);
        w.WriteString("encoding"u8, "base64"u8);
        return EndMessage(w, key, headers);
    }

    private static Utf8JsonWriter StartMessage(string topic, string pos, long timestampMs)
    {
        var w = Rent();
        w.WriteStartObject();
        w.WriteString("type"u8, "message"u8);
        w.WriteString("topic"u8, topic);
        w.WriteString("pos"u8, pos);
        w.WriteNumber("ts"u8, timestampMs);
        return w;
    }

    /// <summary>
    /// Ends a message with its optional <c>key</c> and <c>headers</c>: an object of the record's
    /// headers (names unique; a null value as null, UTF-8 values as strings, other values in
    /// base64, whose names are then listed in <c>headers_base64</c>). No headers: no field.
    /// </summary>
    private static byte[] EndMessage(Utf8JsonWriter w, string? key, IReadOnlyList<KeyValuePair<string, byte[]?>>? headers)
    {
        if (key is not null) w.WriteString("key"u8, key);
        if (headers is { Count: > 0 })
        {
            List<string>? base64 = null;
            w.WriteStartObject("headers"u8);
            foreach (var (name, value) in headers)
            {
                if (value is null) w.WriteNull(name);
                else if (Utf8.IsValid(value)) w.WriteString(name, value);
                else
                {
                    w.WriteBase64String(name, value);
                    (base64 ??= []).Add(name);
                }
            }
            w.WriteEndObject();
            if (base64 is not null)
            {
                w.WriteStartArray("headers_base64"u8);
                foreach (var name in base64) w.WriteStringValue(name);
                w.WriteEndArray();
            }
        }
        w.WriteEndObject();
        return Finish(w);
    }

    /// <summary>True when <paramref name="utf8"/> is exactly one JSON value (and valid UTF-8: it is sent in a text frame).</summary>
    public static bool IsJsonValue(ReadOnlySpan<byte> utf8)
    {
        // Utf8JsonReader does not validate the bytes inside strings; a text frame must be valid UTF-8.
        if (utf8.IsEmpty || !Utf8.IsValid(utf8)) return false;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read()) return false;
            reader.Skip();
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
