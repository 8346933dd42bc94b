using System.Text;
using Broker.Protocol;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Protocol;

public sealed class RequestDecoderTests
{
    /// <summary>The limits of hocon/broker.conf's broker.websocket.</summary>
    private static readonly ProtocolLimits Defaults = TestDefaults.Connection.Limits;

    private static DecodeResult Decode(string json, ProtocolLimits? limits = null) =>
        RequestDecoder.Decode(Encoding.UTF8.GetBytes(json), limits ?? Defaults);

    private static T Ok<T>(string json, ProtocolLimits? limits = null) where T : ClientRequest
    {
        var r = Decode(json, limits);
        Assert.False(r.IsError, r.IsError ? $"{r.Error.Code}: {r.Error.Message}" : null);
        return Assert.IsType<T>(r.Request);
    }

    private static void Fails(string json, string code, string? id, ProtocolLimits? limits = null)
    {
        var r = Decode(json, limits);
        Assert.True(r.IsError, $"expected {code}, decoded {r.Request}");
        Assert.Equal(code, r.Error.Code);
        Assert.Equal(id, r.Id);
        Assert.False(string.IsNullOrWhiteSpace(r.Error.Message));
    }

    private static string Valid => Position.Single(42).Encode();

    // ---- every request type -------------------------------------------------------------

    [Fact]
    public void Subscribe_defaults_to_latest()
    {
        var s = Ok<SubscribeRequest>("""{"type":"subscribe","id":"s1","topic":"orders"}""");
        Assert.Equal(new SubscribeRequest("s1", "orders", StartFrom.Latest, null, null), s);
    }

    [Theory]
    [InlineData("latest", StartFrom.Latest)]
    [InlineData("earliest", StartFrom.Earliest)]
    public void Subscribe_with_from(string from, StartFrom expected)
    {
        var s = Ok<SubscribeRequest>($$"""{"type":"subscribe","id":"s1","topic":"orders","from":"{{from}}"}""");
        Assert.Equal(expected, s.From);
        Assert.Null(s.Since);
        Assert.Null(s.Last);
    }

    [Fact]
    public void Subscribe_with_since()
    {
        var pos = new Position([7, 0, long.MaxValue]);
        var s = Ok<SubscribeRequest>($$"""{"type":"subscribe","id":"s1","topic":"orders","since":"{{pos.Encode()}}","from":"earliest"}""");
        Assert.Equal(pos, s.Since);
        Assert.Equal(StartFrom.Earliest, s.From); // decoded as sent; since wins later, in the connection
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(10_000)]
    public void Subscribe_with_last(int last)
    {
        var s = Ok<SubscribeRequest>($$"""{"type":"subscribe","topic":"orders","last":{{last}}}""");
        Assert.Equal(last, s.Last);
        Assert.Null(s.Id);
    }

    [Fact]
    public void Subscribe_with_a_key_filter()
    {
        var s = Ok<SubscribeRequest>("""{"type":"subscribe","id":"s1","topic":"orders","key":"cust-\u00e9","last":5}""");
        Assert.Equal(new SubscribeRequest("s1", "orders", StartFrom.Latest, null, 5, "cust-é"), s);
        Assert.Null(Ok<SubscribeRequest>("""{"type":"subscribe","topic":"t","key":null}""").Key);
    }

    [Fact]
    public void Subscribe_key_of_the_wrong_type_or_too_long_is_bad_request()
    {
        Fails("""{"type":"subscribe","id":"k","topic":"t","key":5}""", ErrorCodes.BadRequest, "k");
        Fails("""{"type":"subscribe","id":"k","topic":"t","key":["a"]}""", ErrorCodes.BadRequest, "k");
        var max = Defaults.MaxKeyBytes;
        Assert.NotNull(Ok<SubscribeRequest>($$"""{"type":"subscribe","topic":"t","key":"{{new string('k', max)}}"}""").Key);
        Fails($$"""{"type":"subscribe","id":"k","topic":"t","key":"{{new string('k', max + 1)}}"}""", ErrorCodes.BadRequest, "k");
    }

    [Fact]
    public void Subscribe_with_headers()
    {
        Assert.True(Ok<SubscribeRequest>("""{"type":"subscribe","topic":"t","headers":true}""").Headers);
        Assert.False(Ok<SubscribeRequest>("""{"type":"subscribe","topic":"t","headers":false}""").Headers);
        Assert.False(Ok<SubscribeRequest>("""{"type":"subscribe","topic":"t","headers":null}""").Headers);
        Assert.False(Ok<SubscribeRequest>("""{"type":"subscribe","topic":"t"}""").Headers);
        Fails("""{"type":"subscribe","id":"h","topic":"t","headers":"yes"}""", ErrorCodes.BadRequest, "h");
        Fails("""{"type":"subscribe","id":"h","topic":"t","headers":1}""", ErrorCodes.BadRequest, "h");
    }

    [Fact]
    public void Null_optional_fields_are_absent()
    {
        var s = Ok<SubscribeRequest>("""{"type":"subscribe","id":null,"topic":"t","from":null,"since":null,"last":null}""");
        Assert.Equal(new SubscribeRequest(null, "t", StartFrom.Latest, null, null), s);
    }

    [Fact]
    public void Unsubscribe()
    {
        var u = Ok<UnsubscribeRequest>("""{"type":"unsubscribe","id":"u1","topic":"orders"}""");
        Assert.Equal(new UnsubscribeRequest("u1", "orders"), u);
    }

    [Fact]
    public void Ping()
    {
        Assert.Equal(new PingRequest("p1"), Ok<PingRequest>("""{"type":"ping","id":"p1"}"""));
        Assert.Equal(new PingRequest(null), Ok<PingRequest>("""{"type":"ping"}"""));
    }

    [Fact]
    public void Commit()
    {
        var c = Ok<CommitRequest>($$"""{"type":"commit","topic":"orders","pos":"{{Valid}}"}""");
        Assert.Equal("orders", c.Topic);
        Assert.Equal(Position.Single(42), c.Pos);
    }

    [Theory]
    [InlineData("""{"type":"commit","id":"c","topic":"orders"}""")]
    [InlineData("""{"type":"commit","id":"c","topic":"orders","pos":"not-a-pos"}""")]
    [InlineData("""{"type":"commit","id":"c","topic":"orders","pos":7}""")]
    [InlineData("""{"type":"commit","id":"c","pos":"AQEA"}""")]
    public void Bad_commit(string json) => Fails(json, ErrorCodes.BadRequest, "c");

    // ---- publish data ----------------------------------------------------------------------

    [Theory]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("false")]
    [InlineData("0")]
    [InlineData("-12.5e+3")]
    [InlineData("12345678901234567890123456789")]
    [InlineData("\"\"")]
    [InlineData("\"plain\"")]
    [InlineData("\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000 \\u00e9 \\ud83d\\ude00\"")]
    [InlineData("\"unicode café 日本語 😀\"")]
    [InlineData("[]")]
    [InlineData("{}")]
    [InlineData("[1, \"two\", null, {\"three\": [3]}]")]
    [InlineData("{ \"a\" : { \"b\" : [ { \"c\" : null } ] } , \"d\":\"}\" }")]
    public void Publish_preserves_data_bytes_exactly(string data)
    {
        var json = $$"""{"type":"publish","id":"p1","topic":"orders","data":{{data}},"key":"k"}""";
        var p = Ok<PublishRequest>(json);
        Assert.Equal(Encoding.UTF8.GetBytes(data), p.Data);
        Assert.Equal(("p1", "orders", "k"), (p.Id, p.Topic, p.Key));
    }

    [Theory]
    [InlineData("7")]
    [InlineData("\"s\"")]
    [InlineData("{\"a\":1}")]
    [InlineData("[1]")]
    [InlineData("null")]
    public void Publish_data_as_last_field_with_whitespace_around(string data)
    {
        var p = Ok<PublishRequest>($"{{ \"type\" : \"publish\" , \"topic\" : \"t\" , \"data\" :  {data}  \n}}  ");
        Assert.Equal(Encoding.UTF8.GetBytes(data), p.Data);
        Assert.Null(p.Key);
    }

    [Fact]
    public void Publish_key_with_escapes_and_unicode()
    {
        var p = Ok<PublishRequest>("""{"type":"publish","topic":"t","data":1,"key":"k\"é\u65e5😀"}""");
        Assert.Equal("k\"é日😀", p.Key);
    }

    [Fact]
    public void Publish_data_at_the_size_limit_is_accepted_and_one_byte_more_is_too_large()
    {
        var limits = Defaults with { MaxDataBytes = 10 };
        var atLimit = "\"12345678\""; // 10 bytes
        Assert.Equal(Encoding.UTF8.GetBytes(atLimit), Ok<PublishRequest>($$"""{"type":"publish","topic":"t","data":{{atLimit}}}""", limits).Data);
        Fails("""{"type":"publish","id":"big","topic":"t","data":"123456789"}""", ErrorCodes.TooLarge, "big", limits);
    }

    [Fact]
    public void Publish_data_over_the_default_limit_is_too_large()
    {
        var data = new string('x', Defaults.MaxDataBytes);
        Fails($$"""{"type":"publish","id":"big","topic":"t","data":"{{data}}"}""", ErrorCodes.TooLarge, "big");
    }

    [Fact]
    public void Publish_key_too_long_is_bad_request()
    {
        var max = Defaults.MaxKeyBytes;
        Assert.NotNull(Ok<PublishRequest>($$"""{"type":"publish","topic":"t","data":1,"key":"{{new string('k', max)}}"}""").Key);
        Fails($$"""{"type":"publish","id":"k","topic":"t","data":1,"key":"{{new string('k', max + 1)}}"}""", ErrorCodes.BadRequest, "k");
        // The limit is in UTF-8 bytes, not characters.
        Fails($$"""{"type":"publish","id":"k","topic":"t","data":1,"key":"{{new string('é', max / 2 + 1)}}"}""", ErrorCodes.BadRequest, "k");
    }

    [Fact]
    public void Publish_without_data_is_bad_request()
    {
        Fails("""{"type":"publish","id":"p","topic":"t"}""", ErrorCodes.BadRequest, "p");
        Fails("""{"type":"publish","id":"p","topic":"t","Data":1}""", ErrorCodes.BadRequest, "p");
    }

    // ---- framing errors --------------------------------------------------------------------

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("{")]
    [InlineData("{\"type\":\"ping\",\"id\":\"x\"")]
    [InlineData("{\"type\":\"ping\",}")]
    [InlineData("{'type':'ping'}")]
    [InlineData("{type:\"ping\"}")]
    [InlineData("{\"type\":\"ping\" /* c */}")]
    [InlineData("{\"type\":\"ping\"} x")]
    [InlineData("{\"type\":\"ping\"}{}")]
    [InlineData("{\"type\":\"ping\"},")]
    [InlineData("{\"type\":\"publish\",\"topic\":\"t\",\"data\":[1,}")]
    [InlineData("{\"type\":\"publish\",\"topic\":\"t\",\"data\":tru}")]
    [InlineData("[1] x")]
    [InlineData("nonsense")]
    public void Malformed_json_is_bad_request_without_id(string json) => Fails(json, ErrorCodes.BadRequest, null);

    [Theory]
    [InlineData("[]")]
    [InlineData("[{\"type\":\"ping\",\"id\":\"x\"}]")]
    [InlineData("\"ping\"")]
    [InlineData("42")]
    [InlineData("null")]
    [InlineData("true")]
    public void A_json_value_that_is_not_an_object_is_bad_request(string json) => Fails(json, ErrorCodes.BadRequest, null);

    [Theory]
    [InlineData("""{"type":"ping","id":"a?"}""")]                        // inside a string that is read
    [InlineData("""{"type":"publish","topic":"t","data":"a?"}""")]       // inside data, which is only skipped
    [InlineData("""{"type":"publish","topic":"t","data":1,"x?":1}""")]   // inside an ignored property name
    public void Invalid_utf8_is_bad_request(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        bytes[Array.IndexOf(bytes, (byte)'?')] = 0xFF;
        var r = RequestDecoder.Decode(bytes, Defaults);
        Assert.True(r.IsError);
        Assert.Equal(ErrorCodes.BadRequest, r.Error.Code);
    }

    [Theory]
    [InlineData(63, false)]
    [InlineData(64, true)]
    [InlineData(1000, true)]
    public void Deep_nesting_beyond_64_is_bad_request(int arrays, bool rejected)
    {
        // The request object itself is one level: "data" nested `arrays` deep reaches depth arrays + 1.
        var data = new string('[', arrays) + new string(']', arrays);
        var json = $$"""{"type":"publish","id":"deep","topic":"t","data":{{data}}}""";
        if (rejected) Fails(json, ErrorCodes.BadRequest, null);
        else Assert.Equal(Encoding.UTF8.GetBytes(data), Ok<PublishRequest>(json).Data);
    }

    [Fact]
    public void Deep_nesting_in_an_unknown_field_is_bad_request()
    {
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", 100)) + "1" + new string('}', 100);
        Fails($$"""{"type":"ping","id":"x","extra":{{deep}}}""", ErrorCodes.BadRequest, null);
    }

    // ---- type and field errors ---------------------------------------------------------------

    [Theory]
    [InlineData("""{"id":"m1","topic":"t"}""")]
    [InlineData("""{"id":"m1","type":null}""")]
    [InlineData("""{"topic":"t","id":"m1"}""")]
    public void Missing_type_keeps_id(string json) => Fails(json, ErrorCodes.BadRequest, "m1");

    [Theory]
    [InlineData("""{"type":"fly","id":"u1"}""")]
    [InlineData("""{"type":"PING","id":"u1"}""")]
    [InlineData("""{"type":"","id":"u1"}""")]
    [InlineData("""{"id":"u1","type":"subscribe2","topic":"t"}""")]
    public void Unknown_type_keeps_id(string json) => Fails(json, ErrorCodes.BadRequest, "u1");

    [Fact]
    public void Unknown_type_message_is_truncated()
    {
        var r = Decode($$"""{"type":"{{new string('z', 5000)}}","id":"u1"}""");
        Assert.Equal(ErrorCodes.BadRequest, r.Error.Code);
        Assert.True(r.Error.Message.Length < 200, r.Error.Message);
    }

    [Theory]
    [InlineData("""{"type":5,"id":"f1"}""")]
    [InlineData("""{"type":["ping"],"id":"f1"}""")]
    [InlineData("""{"type":"subscribe","id":"f1","topic":5}""")]
    [InlineData("""{"type":"subscribe","topic":{"name":"t"},"id":"f1"}""")]
    [InlineData("""{"type":"subscribe","id":"f1","topic":"t","from":1}""")]
    [InlineData("""{"type":"subscribe","id":"f1","topic":"t","since":5}""")]
    [InlineData("""{"type":"subscribe","id":"f1","topic":"t","last":"5"}""")]
    [InlineData("""{"type":"subscribe","id":"f1","topic":"t","last":1.5}""")]
    [InlineData("""{"type":"subscribe","id":"f1","topic":"t","last":1e2}""")]
    [InlineData("""{"type":"subscribe","id":"f1","topic":"t","last":99999999999999999999}""")]
    [InlineData("""{"type":"subscribe","id":"f1","topic":"t","last":true}""")]
    [InlineData("""{"type":"publish","id":"f1","topic":"t","data":1,"key":5}""")]
    [InlineData("""{"type":"publish","id":"f1","topic":"t","data":1,"key":{}}""")]
    [InlineData("""{"type":"commit","id":"f1","topic":"t","pos":["AQEA"]}""")]
    public void Mistyped_fields_are_bad_request_and_keep_id(string json) => Fails(json, ErrorCodes.BadRequest, "f1");

    [Theory]
    [InlineData("""{"type":"ping","id":{"a":1}}""")]
    [InlineData("""{"type":"ping","id":7}""")]
    [InlineData("""{"type":"ping","id":["x"]}""")]
    [InlineData("""{"type":"ping","id":true}""")]
    public void Mistyped_id_is_bad_request_without_id(string json) => Fails(json, ErrorCodes.BadRequest, null);

    [Fact]
    public void Id_of_64_chars_is_echoed_and_65_is_bad_request_without_id()
    {
        var id64 = new string('i', 64);
        Assert.Equal(id64, Ok<PingRequest>($$"""{"type":"ping","id":"{{id64}}"}""").Id);
        Fails($$"""{"type":"ping","id":"{{id64}}i"}""", ErrorCodes.BadRequest, null);
        Fails($$"""{"type":"publish","topic":"t","data":1,"id":"{{new string('i', 1000)}}"}""", ErrorCodes.BadRequest, null);
    }

    [Fact]
    public void Id_is_echoed_when_it_comes_after_the_bad_field()
    {
        Fails("""{"type":"subscribe","topic":"bad topic","id":"late"}""", ErrorCodes.BadRequest, "late");
        Fails("""{"topic":7,"type":"subscribe","id":"late"}""", ErrorCodes.BadRequest, "late");
    }

    // ---- topics ------------------------------------------------------------------------------

    public static TheoryData<string> InvalidTopics => new()
    {
        "",
        new string('t', 201),
        new string('t', 10_000),
        "has space",
        " lead",
        "trail ",
        "a/b",
        "a\\b",
        "a:b",
        "a*b",
        "a>b",
        "café",
        "日本",
        "emoji😀",
        "tab\t",
        "nul\0",
        ".",
        "..",
    };

    [Theory]
    [MemberData(nameof(InvalidTopics))]
    public void Invalid_topic_names_are_bad_request(string topic)
    {
        var t = System.Text.Json.JsonSerializer.Serialize(topic);
        foreach (var type in new[] { "subscribe", "unsubscribe", "publish", "commit" })
            Fails($$"""{"type":"{{type}}","id":"t1","topic":{{t}},"data":1,"pos":"{{Valid}}"}""", ErrorCodes.BadRequest, "t1");
    }

    [Theory]
    [InlineData("subscribe")]
    [InlineData("unsubscribe")]
    [InlineData("publish")]
    [InlineData("commit")]
    public void Missing_topic_is_bad_request(string type) =>
        Fails($$"""{"type":"{{type}}","id":"t1","data":1,"pos":"{{Valid}}"}""", ErrorCodes.BadRequest, "t1");

    public static TheoryData<string> ValidTopics => new()
    {
        "a",
        "a.b_c-D9",
        new string('t', 200),
        "...",
        ".hidden",
        "_",
        "-",
        "0",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
    };

    [Theory]
    [MemberData(nameof(ValidTopics))]
    public void Valid_edge_topic_names(string topic)
    {
        Assert.Equal(topic, Ok<SubscribeRequest>($$"""{"type":"subscribe","topic":"{{topic}}"}""").Topic);
        Assert.Equal(topic, Ok<PublishRequest>($$"""{"type":"publish","topic":"{{topic}}","data":1}""").Topic);
        Assert.True(TopicName.IsValid(topic));
    }

    [Fact]
    public void Escaped_topic_is_unescaped_before_validation()
    {
        Assert.Equal("ab", Ok<SubscribeRequest>("""{"type":"subscribe","topic":"\u0061b"}""").Topic);
        Fails("""{"type":"subscribe","id":"e","topic":"a\u0020b"}""", ErrorCodes.BadRequest, "e");
        Fails("""{"type":"subscribe","id":"e","topic":"a\/b"}""", ErrorCodes.BadRequest, "e");
    }

    // ---- subscribe options -------------------------------------------------------------------

    [Theory]
    [InlineData("middle")]
    [InlineData("")]
    [InlineData("Latest")]
    [InlineData("EARLIEST")]
    [InlineData(" latest")]
    public void Invalid_from_is_bad_request(string from) =>
        Fails($$"""{"type":"subscribe","id":"f","topic":"t","from":"{{from}}"}""", ErrorCodes.BadRequest, "f");

    public static TheoryData<string> InvalidSince => new()
    {
        "",
        "garbage!",
        "not a pos",
        "AQEA=",                      // padding: not the canonical spelling
        "AQGFAA",                     // [1,1,0x85,0x00]: varint 5 spelled in two bytes
        " " + Position.Single(42).Encode(),
        Position.Single(42).Encode() + "\n",
        "AgEA",                       // version 2
        "AQ",                         // version only
        "AQA",                        // zero partitions
        "AQIA",                       // two partitions, one offset
        "AQEAAA",                     // trailing byte
        System.Buffers.Text.Base64Url.EncodeToString([1, 1, 0xFF]), // truncated varint
        new string('A', 20_000),
    };

    [Theory]
    [MemberData(nameof(InvalidSince))]
    public void Invalid_since_is_bad_request(string since) =>
        Fails($$"""{"type":"subscribe","id":"s","topic":"t","since":{{System.Text.Json.JsonSerializer.Serialize(since)}}}""", ErrorCodes.BadRequest, "s");

    [Theory]
    [InlineData(-1)]
    [InlineData(long.MinValue)]
    [InlineData(10_001)]
    [InlineData(int.MaxValue + 1L)]
    [InlineData(long.MaxValue)]
    public void Last_out_of_range_is_bad_request(long last) =>
        Fails($$"""{"type":"subscribe","id":"l","topic":"t","last":{{last}}}""", ErrorCodes.BadRequest, "l");

    [Fact]
    public void Last_limit_follows_the_configured_limits()
    {
        var limits = Defaults with { MaxLast = 5 };
        Assert.Equal(5, Ok<SubscribeRequest>("""{"type":"subscribe","topic":"t","last":5}""", limits).Last);
        Fails("""{"type":"subscribe","id":"l","topic":"t","last":6}""", ErrorCodes.BadRequest, "l", limits);
    }

    // ---- forward compatibility ---------------------------------------------------------------

    [Fact]
    public void Unknown_extra_fields_of_any_kind_are_ignored()
    {
        var p = Ok<PublishRequest>("""
            {"v":2,"type":"publish","meta":{"x":[1,{"y":null}]},"id":"x1","topic":"t","flags":[true,false],
             "data":{"a":1},"note":"\u00e9","ttl":1.5,"nothing":null}
            """);
        Assert.Equal("""{"a":1}"""u8.ToArray(), p.Data);
        Assert.Equal("x1", p.Id);
    }

    [Fact]
    public void Escaped_property_names_work()
    {
        var p = Ok<PublishRequest>("""{"\u0074ype":"publish","\u0069d":"e1","t\u006fpic":"t","d\u0061ta":[1],"\u006bey":"k"}""");
        Assert.Equal(("e1", "t", "k"), (p.Id, p.Topic, p.Key));
        Assert.Equal("[1]"u8.ToArray(), p.Data);
        var s = Ok<SubscribeRequest>("""{"type":"subscribe","topic":"t","\u006c\u0061\u0073\u0074":3,"fro\u006d":"earliest"}""");
        Assert.Equal((3, StartFrom.Earliest), (s.Last, s.From));
    }

    [Fact]
    public void Property_names_are_case_sensitive()
    {
        Fails("""{"Type":"ping","id":"c"}""", ErrorCodes.BadRequest, "c");
        var s = Ok<SubscribeRequest>("""{"type":"subscribe","topic":"t","Last":"ignored"}""");
        Assert.Null(s.Last);
    }
}
