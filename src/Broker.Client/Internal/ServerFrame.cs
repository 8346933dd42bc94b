using System.Text;
using System.Text.Json;

namespace Broker.Client.Internal;

/// <summary>
/// One server → client object (docs/protocol.md, "Server → client", and the optional additions:
/// <c>authed</c>, <c>token_expiring</c>, <c>retry_after_ms</c>). Unknown fields are ignored.
/// </summary>
internal sealed class ServerFrame
{
    public string? Type;
    public string? Id;
    public string? Topic;
    public string? Pos;
    public long Ts;
    public ReadOnlyMemory<byte> Data;
    public string? Key;
    public bool Base64;
    public Dictionary<string, string?>? Headers;
    public List<string>? HeadersBase64;
    public bool? Recovered;
    public string? Code;
    public string? Message;
    public long? RetryAfterMs;
    public string? Sub;
    public long? Exp;

    public BrokerErrorException ToError() => new(Code ?? BrokerErrorCodes.Internal, Message ?? "",
        RetryAfterMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null);

    /// <summary>
    /// Parses one text frame: a JSON object, or (batching, <c>?batch=1</c>) a JSON array of objects.
    /// Returns false when the frame is not JSON of that shape.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, List<ServerFrame> into)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read()) return false;
            if (reader.TokenType == JsonTokenType.StartArray)
            {
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject) return false;
                    into.Add(ReadObject(ref reader, utf8));
                }
                return true;
            }
            if (reader.TokenType != JsonTokenType.StartObject) return false;
            into.Add(ReadObject(ref reader, utf8));
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static ServerFrame ReadObject(ref Utf8JsonReader reader, ReadOnlySpan<byte> utf8)
    {
        var f = new ServerFrame();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(reader.GetString()!) : reader.ValueSpan;
            reader.Read();
            if (name.SequenceEqual("type"u8)) f.Type = String(ref reader);
            else if (name.SequenceEqual("id"u8)) f.Id = String(ref reader);
            else if (name.SequenceEqual("topic"u8)) f.Topic = String(ref reader);
            else if (name.SequenceEqual("pos"u8)) f.Pos = String(ref reader);
            else if (name.SequenceEqual("key"u8)) f.Key = String(ref reader);
            else if (name.SequenceEqual("code"u8)) f.Code = String(ref reader);
            else if (name.SequenceEqual("message"u8)) f.Message = String(ref reader);
            else if (name.SequenceEqual("sub"u8)) f.Sub = String(ref reader);
            else if (name.SequenceEqual("encoding"u8)) f.Base64 = String(ref reader) == "base64";
            else if (name.SequenceEqual("ts"u8)) f.Ts = Number(ref reader) ?? 0;
            else if (name.SequenceEqual("exp"u8)) f.Exp = Number(ref reader);
            else if (name.SequenceEqual("retry_after_ms"u8)) f.RetryAfterMs = Number(ref reader);
            else if (name.SequenceEqual("recovered"u8)) f.Recovered = reader.TokenType is JsonTokenType.True ? true : reader.TokenType is JsonTokenType.False ? false : null;
            else if (name.SequenceEqual("data"u8))
            {
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                // After Skip() the reader has consumed the whole value, closing quote or bracket included.
                f.Data = utf8[start..(int)reader.BytesConsumed].ToArray();
            }
            else if (name.SequenceEqual("headers"u8) && reader.TokenType == JsonTokenType.StartObject)
            {
                f.Headers = new Dictionary<string, string?>(StringComparer.Ordinal);
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var header = reader.GetString()!;
                    reader.Read();
                    f.Headers[header] = String(ref reader);
                }
            }
            else if (name.SequenceEqual("headers_base64"u8) && reader.TokenType == JsonTokenType.StartArray)
            {
                f.HeadersBase64 = [];
                while (reader.Read() && reader.TokenType == JsonTokenType.String) f.HeadersBase64.Add(reader.GetString()!);
            }
            else
            {
                reader.Skip(); // unknown field: newer servers may add some
            }
        }
        return f;
    }

    private static string? String(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String) return reader.GetString();
        reader.Skip();
        return null;
    }

    private static long? Number(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var n)) return n;
        reader.Skip();
        return null;
    }
}
