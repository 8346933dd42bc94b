using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Broker.Protocol;

/// <summary>The outcome of decoding one text frame: a request, or an error to send back (with the request's id when it could be read).</summary>
public readonly record struct DecodeResult(ClientRequest? Request, ProtocolError Error, string? Id)
{
    public bool IsError => Request is null;

    public static DecodeResult Ok(ClientRequest request) => new(request, default, request.Id);

    public static DecodeResult Fail(string? id, string code, string message) => new(null, new ProtocolError(code, message), id);
}

/// <summary>
/// Decodes client frames (one JSON object per text frame) into <see cref="ClientRequest"/>s.
/// Unknown fields are ignored (clients may be newer than the server); a field of the wrong
/// JSON type, a missing required field or an unknown <c>type</c> is a <c>bad_request</c>.
/// </summary>
public static class RequestDecoder
{
    public const int MaxIdLength = 64;
    private const int MaxDepth = 64;

    public static DecodeResult Decode(ReadOnlySpan<byte> utf8, ProtocolLimits limits)
    {
        // Utf8JsonReader does not validate strings it skips (data) and GetString() throws on invalid UTF-8.
        if (!Utf8.IsValid(utf8)) return DecodeResult.Fail(null, ErrorCodes.BadRequest, "malformed JSON: invalid UTF-8");
        Fields f = default;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                // Validate the rest so that garbage is reported as malformed rather than "not an object".
                if (reader.TokenType != JsonTokenType.None) reader.Skip();
                while (reader.Read()) { }
                return DecodeResult.Fail(null, ErrorCodes.BadRequest, "a frame must be one JSON object");
            }
            var error = ReadFields(ref reader, ref f);
            while (reader.Read()) { } // trailing content after the object is malformed JSON and throws
            if (error is not null) return DecodeResult.Fail(f.IdOk ? f.Id : null, ErrorCodes.BadRequest, error);
        }
        catch (JsonException)
        {
            return DecodeResult.Fail(null, ErrorCodes.BadRequest, "malformed JSON");
        }
        return Build(ref f, utf8, limits);
    }

    private ref struct Fields
    {
        public string? Type;
        public string? Id;
        public bool IdOk;
        public string? Topic;
        public string? From;
        public string? Since;
        public string? Pos;
        public string? Key;
        public string? Token;
        public long? Last;
        public bool Headers;
        public bool HasData;
        public int DataStart;
        public int DataLength;
    }

    private static string? ReadFields(ref Utf8JsonReader reader, ref Fields f)
    {
        string? firstError = null;
        f.IdOk = true;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndObject) return firstError;
            // Property name
            var prop = reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(reader.GetString()!) : reader.ValueSpan;
            reader.Read();
            string? err = null;
            if (prop.SequenceEqual("type"u8)) err = ReadString(ref reader, "type", out f.Type);
            else if (prop.SequenceEqual("id"u8))
            {
                err = ReadString(ref reader, "id", out f.Id);
                if (err is null && f.Id is { Length: > MaxIdLength }) err = $"id must be at most {MaxIdLength} characters";
                if (err is not null) { f.IdOk = false; f.Id = null; }
            }
            else if (prop.SequenceEqual("topic"u8)) err = ReadString(ref reader, "topic", out f.Topic);
            else if (prop.SequenceEqual("from"u8)) err = ReadString(ref reader, "from", out f.From);
            else if (prop.SequenceEqual("since"u8)) err = ReadString(ref reader, "since", out f.Since);
            else if (prop.SequenceEqual("pos"u8)) err = ReadString(ref reader, "pos", out f.Pos);
            else if (prop.SequenceEqual("key"u8)) err = ReadString(ref reader, "key", out f.Key);
            else if (prop.SequenceEqual("token"u8)) err = ReadString(ref reader, "token", out f.Token);
            else if (prop.SequenceEqual("last"u8))
            {
                if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var last)) f.Last = last;
                else if (reader.TokenType != JsonTokenType.Null) err = "last must be an integer";
                reader.Skip();
            }
            else if (prop.SequenceEqual("headers"u8))
            {
                if (reader.TokenType is JsonTokenType.True or JsonTokenType.False) f.Headers = reader.GetBoolean();
                else if (reader.TokenType != JsonTokenType.Null) err = "headers must be a boolean";
                reader.Skip();
            }
            else if (prop.SequenceEqual("data"u8))
            {
                f.HasData = true;
                f.DataStart = (int)reader.TokenStartIndex;
                reader.Skip();
                // After Skip() the reader has consumed the whole value, closing quote or bracket included.
                f.DataLength = (int)reader.BytesConsumed - f.DataStart;
            }
            else
            {
                reader.Skip(); // unknown field: ignored for forward compatibility
            }
            firstError ??= err;
        }
        throw new JsonException("unterminated object");
    }

    private static string? ReadString(ref Utf8JsonReader reader, string field, out string? value)
    {
        value = null;
        if (reader.TokenType == JsonTokenType.String)
        {
            value = reader.GetString();
            return null;
        }
        reader.Skip();
        return reader.TokenType == JsonTokenType.Null ? null : $"{field} must be a string";
    }

    private static DecodeResult Build(ref Fields f, ReadOnlySpan<byte> utf8, ProtocolLimits limits)
    {
        var id = f.Id;
        if (f.Type is null) return DecodeResult.Fail(id, ErrorCodes.BadRequest, "missing field: type");
        switch (f.Type)
        {
            case "ping":
                return DecodeResult.Ok(new PingRequest(id));
            case "subscribe":
            {
                if (CheckTopic(f.Topic, id) is { } bad) return bad;
                var from = StartFrom.Latest;
                if (f.From is not null)
                {
                    if (f.From == "latest") from = StartFrom.Latest;
                    else if (f.From == "earliest") from = StartFrom.Earliest;
                    else return DecodeResult.Fail(id, ErrorCodes.BadRequest, "from must be \"latest\" or \"earliest\"");
                }
                Position? since = null;
                if (f.Since is not null)
                {
                    if (!Position.TryParse(f.Since, out var p)) return DecodeResult.Fail(id, ErrorCodes.BadRequest, "since is not a valid position");
                    since = p;
                }
                int? last = null;
                if (f.Last is { } l)
                {
                    if (l < 0 || l > limits.MaxLast) return DecodeResult.Fail(id, ErrorCodes.BadRequest, $"last must be between 0 and {limits.MaxLast}");
                    last = (int)l;
                }
                if (f.Key is not null && Encoding.UTF8.GetByteCount(f.Key) > limits.MaxKeyBytes)
                    return DecodeResult.Fail(id, ErrorCodes.BadRequest, $"key must be at most {limits.MaxKeyBytes} bytes");
                return DecodeResult.Ok(new SubscribeRequest(id, f.Topic!, from, since, last, f.Key, f.Headers));
            }
            case "unsubscribe":
                if (CheckTopic(f.Topic, id) is { } badU) return badU;
                return DecodeResult.Ok(new UnsubscribeRequest(id, f.Topic!));
            case "publish":
            {
                if (CheckTopic(f.Topic, id) is { } badP) return badP;
                if (!f.HasData) return DecodeResult.Fail(id, ErrorCodes.BadRequest, "missing field: data");
                if (f.DataLength > limits.MaxDataBytes)
                    return DecodeResult.Fail(id, ErrorCodes.TooLarge, $"data is {f.DataLength} bytes; the limit is {limits.MaxDataBytes}");
                if (f.Key is not null && Encoding.UTF8.GetByteCount(f.Key) > limits.MaxKeyBytes)
                    return DecodeResult.Fail(id, ErrorCodes.BadRequest, $"key must be at most {limits.MaxKeyBytes} bytes");
                return DecodeResult.Ok(new PublishRequest(id, f.Topic!, utf8.Slice(f.DataStart, f.DataLength).ToArray(), f.Key));
            }
            case "commit":
            {
                if (CheckTopic(f.Topic, id) is { } badC) return badC;
                if (f.Pos is null) return DecodeResult.Fail(id, ErrorCodes.BadRequest, "missing field: pos");
                if (!Position.TryParse(f.Pos, out var pos)) return DecodeResult.Fail(id, ErrorCodes.BadRequest, "pos is not a valid position");
                return DecodeResult.Ok(new CommitRequest(id, f.Topic!, pos));
            }
            case "auth":
                if (string.IsNullOrEmpty(f.Token)) return DecodeResult.Fail(id, ErrorCodes.BadRequest, "missing field: token");
                return DecodeResult.Ok(new AuthRequest(id, f.Token));
            default:
                return DecodeResult.Fail(id, ErrorCodes.BadRequest, $"unknown type: {Truncate(f.Type)}");
        }
    }

    private static DecodeResult? CheckTopic(string? topic, string? id)
    {
        if (topic is null) return DecodeResult.Fail(id, ErrorCodes.BadRequest, "missing field: topic");
        if (!TopicName.IsValid(topic))
            return DecodeResult.Fail(id, ErrorCodes.BadRequest, $"invalid topic: must be 1-{TopicName.MaxLength} characters of A-Z a-z 0-9 . _ -");
        return null;
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
