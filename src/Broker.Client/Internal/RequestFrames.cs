using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Broker.Client.Internal;

/// <summary>Encodes client → server frames (docs/protocol.md, "Client → server") as UTF-8 JSON.</summary>
internal static class RequestFrames
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // Frames go to a WebSocket, never into HTML: keep non-ASCII text as UTF-8.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static byte[] Subscribe(string id, string topic, SubscribeOptions options, string? since)
    {
        return Write(w =>
        {
            w.WriteString("type"u8, "subscribe"u8);
            w.WriteString("id"u8, id);
            w.WriteString("topic"u8, topic);
            if (since is not null) w.WriteString("since"u8, since);
            else if (options.Last is { } last) w.WriteNumber("last"u8, last);
            else if (options.From == StartFrom.Earliest) w.WriteString("from"u8, "earliest"u8);
            if (options.Key is not null) w.WriteString("key"u8, options.Key);
            if (options.Headers) w.WriteBoolean("headers"u8, true);
        });
    }

    public static byte[] Unsubscribe(string id, string topic) => Write(w =>
    {
        w.WriteString("type"u8, "unsubscribe"u8);
        w.WriteString("id"u8, id);
        w.WriteString("topic"u8, topic);
    });

    public static byte[] Commit(string id, string topic, string pos) => Write(w =>
    {
        w.WriteString("type"u8, "commit"u8);
        w.WriteString("id"u8, id);
        w.WriteString("topic"u8, topic);
        w.WriteString("pos"u8, pos);
    });

    public static byte[] Ping(string id) => Write(w =>
    {
        w.WriteString("type"u8, "ping"u8);
        w.WriteString("id"u8, id);
    });

    public static byte[] Auth(string id, string token) => Write(w =>
    {
        w.WriteString("type"u8, "auth"u8);
        w.WriteString("id"u8, id);
        w.WriteString("token"u8, token);
    });

    /// <summary>A publish; <paramref name="writeData"/> writes exactly one JSON value.</summary>
    public static byte[] Publish<TState>(string id, string topic, string? key, TState state, Action<Utf8JsonWriter, TState> writeData) => Write(w =>
    {
        w.WriteString("type"u8, "publish"u8);
        w.WriteString("id"u8, id);
        w.WriteString("topic"u8, topic);
        if (key is not null) w.WriteString("key"u8, key);
        w.WritePropertyName("data"u8);
        writeData(w, state);
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
