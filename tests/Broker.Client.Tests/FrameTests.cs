using System.Text;
using System.Text.Json.Nodes;
using Broker.Client.Internal;

namespace Broker.Client.Tests;

/// <summary>Parsing server frames (objects and batched arrays) and encoding requests.</summary>
public sealed class FrameTests
{
    private static List<ServerFrame> Parse(string json)
    {
        var frames = new List<ServerFrame>();
        Assert.True(ServerFrame.TryParse(Encoding.UTF8.GetBytes(json), frames), json);
        return frames;
    }

    [Fact]
    public void A_message_keeps_its_data_as_the_exact_raw_json_and_its_optional_fields()
    {
        var f = Assert.Single(Parse("""
            {"type":"message","topic":"t","pos":"AQEB","ts":1700000000123,"data":{"a":[1,2,{"b":"é\n"}]},"key":"k",
             "headers":{"trace":"x","bin":"AAE=","nul":null},"headers_base64":["bin"],"future":{"x":1}}
            """));
        Assert.Equal("message", f.Type);
        Assert.Equal("""{"a":[1,2,{"b":"é\n"}]}""", Encoding.UTF8.GetString(f.Data.Span));
        Assert.Equal(1700000000123, f.Ts);
        Assert.Equal("k", f.Key);
        Assert.Equal("x", f.Headers!["trace"]);
        Assert.Null(f.Headers["nul"]);
        Assert.Equal(["bin"], f.HeadersBase64!);
    }

    [Fact]
    public void A_batched_frame_is_an_array_of_objects_in_order()
    {
        var frames = Parse("""[{"type":"message","topic":"t","pos":"p1","ts":1,"data":"s"},{"type":"ack","id":"x-1","topic":"t","pos":"p2"}, {"type":"error","id":"x-2","code":"rate_limited","message":"m","retry_after_ms":250}]""");
        Assert.Equal(["message", "ack", "error"], frames.Select(f => f.Type));
        Assert.Equal("\"s\"", Encoding.UTF8.GetString(frames[0].Data.Span));
        Assert.Equal(TimeSpan.FromMilliseconds(250), frames[2].ToError().RetryAfter);
        Assert.True(frames[2].ToError().IsTransient);
    }

    [Fact]
    public void Restored_and_resumed_subscribed_frames_carry_recovered()
    {
        var f = Assert.Single(Parse("""{"type":"subscribed","topic":"t","pos":"AQEF","recovered":false}"""));
        Assert.Null(f.Id);
        Assert.False(f.Recovered);
        Assert.Null(Assert.Single(Parse("""{"type":"subscribed","id":"s1","topic":"t","pos":"AQEF"}""")).Recovered);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("42")]
    [InlineData("[1,2]")]
    public void Frames_that_are_not_objects_are_refused(string json) =>
        Assert.False(ServerFrame.TryParse(Encoding.UTF8.GetBytes(json), []));

    [Fact]
    public void Requests_are_encoded_with_only_the_fields_they_need()
    {
        var resume = JsonNode.Parse(RequestFrames.Subscribe("s1", "t", new SubscribeOptions { Last = 5, Key = "k", Headers = true }, since: "AQEB"))!;
        Assert.Equal("""{"type":"subscribe","id":"s1","topic":"t","since":"AQEB","key":"k","headers":true}""", resume.ToJsonString());
        var earliest = JsonNode.Parse(RequestFrames.Subscribe("s2", "t", new SubscribeOptions { From = StartFrom.Earliest }, since: null))!;
        Assert.Equal("""{"type":"subscribe","id":"s2","topic":"t","from":"earliest"}""", earliest.ToJsonString());
        var publish = RequestFrames.Publish("p-1", "t", "k", 0, static (w, _) => w.WriteRawValue("""{"x":"é"}"""u8));
        Assert.Equal("""{"type":"publish","id":"p-1","topic":"t","key":"k","data":{"x":"é"}}""", Encoding.UTF8.GetString(publish));
    }
}
