using System.Text;
using System.Text.Json;
using Broker.Protocol;

namespace Broker.Tests.Protocol;

public sealed class ServerFramesTests
{
    private static readonly string Pos = Position.Single(42).Encode();

    private static JsonElement Parse(byte[] frame)
    {
        using var doc = JsonDocument.Parse(frame);
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        return doc.RootElement.Clone();
    }

    private static void HasExactly(JsonElement frame, params string[] fields) =>
        Assert.Equal(fields.Order(StringComparer.Ordinal), frame.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));

    [Fact]
    public void Subscribed_with_recovered()
    {
        var f = Parse(ServerFrames.Subscribed("s1", "orders", Position.Single(7), true));
        HasExactly(f, "type", "id", "topic", "pos", "recovered");
        Assert.Equal("subscribed", f.GetProperty("type").GetString());
        Assert.Equal("s1", f.GetProperty("id").GetString());
        Assert.Equal("orders", f.GetProperty("topic").GetString());
        Assert.Equal(Position.Single(7).Encode(), f.GetProperty("pos").GetString());
        Assert.True(f.GetProperty("recovered").GetBoolean());
        Assert.False(Parse(ServerFrames.Subscribed("s1", "orders", Position.Single(7), false)).GetProperty("recovered").GetBoolean());
    }

    [Fact]
    public void Subscribed_without_id_or_recovered()
    {
        var f = Parse(ServerFrames.Subscribed(null, "orders", Position.Single(0), null));
        HasExactly(f, "type", "topic", "pos");
        Assert.True(Position.TryParse(f.GetProperty("pos").GetString(), out var head));
        Assert.Equal(Position.Single(0), head);
    }

    [Fact]
    public void Unsubscribed()
    {
        var f = Parse(ServerFrames.Unsubscribed("u1", "orders"));
        HasExactly(f, "type", "id", "topic");
        Assert.Equal(("unsubscribed", "u1", "orders"), (f.GetProperty("type").GetString(), f.GetProperty("id").GetString(), f.GetProperty("topic").GetString()));
        HasExactly(Parse(ServerFrames.Unsubscribed(null, "orders")), "type", "topic");
    }

    [Fact]
    public void Ack()
    {
        var f = Parse(ServerFrames.Ack("p1", "orders", Pos));
        HasExactly(f, "type", "id", "topic", "pos");
        Assert.Equal(("ack", "p1", "orders", Pos),
            (f.GetProperty("type").GetString(), f.GetProperty("id").GetString(), f.GetProperty("topic").GetString(), f.GetProperty("pos").GetString()));
        HasExactly(Parse(ServerFrames.Ack(null, "orders", Pos)), "type", "topic", "pos");
    }

    [Fact]
    public void Pong()
    {
        var f = Parse(ServerFrames.Pong("x"));
        HasExactly(f, "type", "id");
        Assert.Equal(("pong", "x"), (f.GetProperty("type").GetString(), f.GetProperty("id").GetString()));
        HasExactly(Parse(ServerFrames.Pong(null)), "type");
    }

    [Fact]
    public void Error()
    {
        var f = Parse(ServerFrames.Error("e1", ErrorCodes.TooLarge, "too big"));
        HasExactly(f, "type", "id", "code", "message");
        Assert.Equal(("error", "e1", "too_large", "too big"),
            (f.GetProperty("type").GetString(), f.GetProperty("id").GetString(), f.GetProperty("code").GetString(), f.GetProperty("message").GetString()));

        var g = Parse(ServerFrames.Error(null, ProtocolError.BadRequest("nope")));
        HasExactly(g, "type", "code", "message");
        Assert.Equal(("bad_request", "nope"), (g.GetProperty("code").GetString(), g.GetProperty("message").GetString()));
    }

    [Theory]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("-1.5e3")]
    [InlineData("\"s \\\" \\u00e9\"")]
    [InlineData("[1,[2,[3]]]")]
    [InlineData("{\"a\":{\"b\":[null,\"x\"]},\"c\":\"日本\"}")]
    [InlineData(" { \"spaced\" : 1 } ")]
    public void Message_with_json_data(string data)
    {
        var f = Parse(ServerFrames.Message("orders", Pos, 1_700_000_000_123, Encoding.UTF8.GetBytes(data), "k"));
        HasExactly(f, "type", "topic", "pos", "ts", "data", "key");
        Assert.Equal("message", f.GetProperty("type").GetString());
        Assert.Equal("orders", f.GetProperty("topic").GetString());
        Assert.Equal(Pos, f.GetProperty("pos").GetString());
        Assert.Equal(1_700_000_000_123, f.GetProperty("ts").GetInt64());
        Assert.Equal("k", f.GetProperty("key").GetString());
        using var expected = JsonDocument.Parse(data);
        Assert.True(JsonElement.DeepEquals(expected.RootElement, f.GetProperty("data")), f.GetProperty("data").GetRawText());
    }

    [Fact]
    public void Message_data_bytes_are_written_verbatim()
    {
        var data = """{"b":1,"a":[ 1.50 , "\u00e9" ]}"""u8.ToArray();
        var frame = ServerFrames.Message("t", Pos, 0, data, null);
        Assert.Equal(data, Encoding.UTF8.GetBytes(Parse(frame).GetProperty("data").GetRawText()));
    }

    [Fact]
    public void Message_without_key_has_no_key_field()
    {
        var f = Parse(ServerFrames.Message("t", Pos, 5, "1"u8, null));
        HasExactly(f, "type", "topic", "pos", "ts", "data");
    }

    [Fact]
    public void Message_with_null_data()
    {
        var f = Parse(ServerFrames.Message("t", Pos, 5, default, null));
        HasExactly(f, "type", "topic", "pos", "ts", "data");
        Assert.Equal(JsonValueKind.Null, f.GetProperty("data").ValueKind);
    }

    [Fact]
    public void MessageBinary_writes_base64_data_with_the_encoding_flag()
    {
        byte[] value = [0xff, 0x00, 0xc3, 0x28, 0x80];
        var f = Parse(ServerFrames.MessageBinary("t", Pos, 9, value, null));
        HasExactly(f, "type", "topic", "pos", "ts", "data", "encoding");
        Assert.Equal(Convert.ToBase64String(value), f.GetProperty("data").GetString());
        Assert.Equal("base64", f.GetProperty("encoding").GetString());
    }

    [Fact]
    public void Headers_are_an_object_of_strings_with_non_utf8_values_in_base64_and_listed()
    {
        byte[] binary = [0xff, 0xfe];
        var f = Parse(ServerFrames.Message("t", Pos, 9, "1"u8, "k",
        [
            new("trace", "abc \"é\""u8.ToArray()),
            new("bin", binary),
            new("empty", []),
            new("none", null),
        ]));
        HasExactly(f, "type", "topic", "pos", "ts", "data", "key", "headers", "headers_base64");
        var h = f.GetProperty("headers");
        Assert.Equal("abc \"é\"", h.GetProperty("trace").GetString());
        Assert.Equal(Convert.ToBase64String(binary), h.GetProperty("bin").GetString());
        Assert.Equal("", h.GetProperty("empty").GetString());
        Assert.Equal(JsonValueKind.Null, h.GetProperty("none").ValueKind);
        Assert.Equal(["bin"], f.GetProperty("headers_base64").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void No_headers_means_no_field()
    {
        HasExactly(Parse(ServerFrames.Message("t", Pos, 9, "1"u8, null, [])), "type", "topic", "pos", "ts", "data");
        HasExactly(Parse(ServerFrames.MessageText("t", Pos, 9, "x"u8, null, null)), "type", "topic", "pos", "ts", "data");
    }

    [Theory]
    [InlineData("plain text")]
    [InlineData("")]
    [InlineData("{not json")]
    [InlineData("quote \" backslash \\ newline \n tab \t nul \0 bell \a")]
    [InlineData("café 日本語 😀 \u2028 \u2029")]
    [InlineData("</script><!-- & '")]
    public void MessageText_writes_the_text_as_a_json_string(string text)
    {
        var f = Parse(ServerFrames.MessageText("t", Pos, 9, Encoding.UTF8.GetBytes(text), "key"));
        HasExactly(f, "type", "topic", "pos", "ts", "data", "key");
        Assert.Equal("message", f.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.String, f.GetProperty("data").ValueKind);
        Assert.Equal(text, f.GetProperty("data").GetString());
        Assert.Equal(9, f.GetProperty("ts").GetInt64());
    }

    [Theory]
    [InlineData("café")]
    [InlineData("日本語")]
    [InlineData("😀 and 𝄞")]
    [InlineData("mixed \"quotes\" \\ é \n 日 \u0001")]
    [InlineData("<>&'+`")]
    public void Non_ascii_strings_round_trip(string s)
    {
        var error = Parse(ServerFrames.Error(s, ErrorCodes.Internal, s));
        Assert.Equal(s, error.GetProperty("id").GetString());
        Assert.Equal(s, error.GetProperty("message").GetString());

        var message = Parse(ServerFrames.Message("t", Pos, 1, "1"u8, s));
        Assert.Equal(s, message.GetProperty("key").GetString());
        Assert.Equal(s, Parse(ServerFrames.Pong(s)).GetProperty("id").GetString());
    }

    [Fact]
    public void Basic_multilingual_plane_text_is_written_as_utf8_not_escaped()
    {
        var frame = ServerFrames.Error("id", ErrorCodes.Internal, "café 日本語");
        Assert.Contains("café 日本語", Encoding.UTF8.GetString(frame));
    }

    [Fact]
    public void Frames_are_independent_arrays()
    {
        var a = ServerFrames.Pong("a");
        var b = ServerFrames.Pong("b");
        Assert.Equal("a", Parse(a).GetProperty("id").GetString());
        Assert.Equal("b", Parse(b).GetProperty("id").GetString());
    }

    [Fact]
    public void A_large_frame_does_not_corrupt_the_next()
    {
        var big = new string('x', 300 * 1024);
        Assert.Equal(big, Parse(ServerFrames.Error("big", ErrorCodes.Internal, big)).GetProperty("message").GetString());
        Assert.Equal("small", Parse(ServerFrames.Pong("small")).GetProperty("id").GetString());
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1.5e-3")]
    [InlineData("true")]
    [InlineData("false")]
    [InlineData("null")]
    [InlineData("\"\"")]
    [InlineData("\"text \\u00e9\"")]
    [InlineData("{}")]
    [InlineData("[]")]
    [InlineData("{\"a\":[1,{\"b\":null}]}")]
    [InlineData("  [1, 2]\n")]
    public void IsJsonValue_true(string utf8) => Assert.True(ServerFrames.IsJsonValue(Encoding.UTF8.GetBytes(utf8)));

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("plain text")]
    [InlineData("{")]
    [InlineData("[1,]")]
    [InlineData("{\"a\":1,}")]
    [InlineData("1 2")]
    [InlineData("{} {}")]
    [InlineData("{\"a\":1}x")]
    [InlineData("'single'")]
    [InlineData("NaN")]
    [InlineData("01")]
    [InlineData("1 // comment")]
    [InlineData("\"unterminated")]
    public void IsJsonValue_false(string utf8) => Assert.False(ServerFrames.IsJsonValue(Encoding.UTF8.GetBytes(utf8)));

    [Fact]
    public void IsJsonValue_false_for_nesting_beyond_64()
    {
        Assert.True(ServerFrames.IsJsonValue(Encoding.UTF8.GetBytes(new string('[', 64) + new string(']', 64))));
        Assert.False(ServerFrames.IsJsonValue(Encoding.UTF8.GetBytes(new string('[', 65) + new string(']', 65))));
    }

    [Fact]
    public void IsJsonValue_false_for_binary_and_invalid_utf8()
    {
        Assert.False(ServerFrames.IsJsonValue([0x00, 0x01, 0xFF]));
        Assert.False(ServerFrames.IsJsonValue([0x22, 0xFF, 0xFE, 0x22])); // "\xFF\xFE": a string of invalid UTF-8
    }
}
