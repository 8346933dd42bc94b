using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;
using Confluent.Kafka;

namespace Broker.IntegrationTests.Security;

/// <summary>
/// Records written straight to Kafka with the broker's own content-type header (<c>broker-ct: json</c>)
/// are validated like any other producer's: a value that is not exactly one JSON value arrives as a
/// JSON string (or base64 when it is not UTF-8), so a producer outside the broker can neither send
/// subscribers invalid JSON nor forge fields of the frame (a <c>"type":"ack"</c> spliced in after
/// <c>data</c>). Live delivery and a read of the log (<c>from: "earliest"</c>) are both checked, on
/// the exact text of every frame.
/// </summary>
public sealed class RecordValidationTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private TestBroker Broker => fixture.Broker;

    /// <summary>Would make the frame <c>…"data":{"n":1},"type":"ack","id":"p"}</c> if it were spliced in as JSON.</summary>
    private const string Forged = "{\"n\":1},\"type\":\"ack\",\"id\":\"p\"";

    /// <summary>
    /// <paramref name="text"/> is exactly one JSON object (nothing after it) whose property names are
    /// unique, and its <c>type</c> is <paramref name="type"/>: a duplicate <c>type</c> or <c>id</c>
    /// would be a forged field, whichever of the two a client's parser keeps.
    /// </summary>
    private static JsonObject AssertOneObject(string text, string type)
    {
        using var doc = JsonDocument.Parse(text); // throws on anything after the first value
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        var names = doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.True(names.Count == names.Distinct().Count(), $"a property given twice: {text}");
        Assert.Equal(type, doc.RootElement.GetProperty("type").GetString());
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>Every frame <paramref name="client"/> kept: one subscribed, then exactly the <c>message</c> frames, each a single clean object.</summary>
    private static List<JsonObject> AssertFrames(WsClient client, int messages)
    {
        var texts = client.Texts;
        Assert.Equal(1 + messages, texts.Count);
        AssertOneObject(texts[0], "subscribed");
        return texts.Skip(1).Select(t => AssertOneObject(t, "message")).ToList();
    }

    /// <summary>A subscriber that keeps the exact text of every frame.</summary>
    private async Task<WsClient> SubscriberAsync(string topic, object? extra = null)
    {
        var client = await Broker.ConnectAsync();
        client.KeepTexts();
        await client.SubscribeAsync(topic, "s", extra);
        return client;
    }

    /// <summary>The next <paramref name="count"/> frames are <c>message</c> frames (any other type, a forged <c>ack</c> included, fails).</summary>
    private static async Task ExpectMessagesAsync(WsClient client, int count)
    {
        for (var i = 0; i < count; i++) await client.ExpectAsync("message");
    }

    [Fact]
    public async Task Kcat_records_labelled_json_that_are_not_one_json_value_arrive_as_strings_and_forge_no_field()
    {
        const string topic = "records.kcat-forged";
        string[] values = [Forged, "not json", "{\"n\":1}{\"n\":2}", "{\"valid\":[1,2]}"];
        await using var live = await SubscriberAsync(topic); // creates the topic

        await Kcat.ProduceAsync(Broker.KafkaBootstrap, topic, ["-H", "broker-ct=json"], values);

        await ExpectMessagesAsync(live, values.Length);
        await using var replay = await SubscriberAsync(topic, new { from = "earliest" });
        await ExpectMessagesAsync(replay, values.Length);
        foreach (var client in new[] { live, replay })
        {
            var m = AssertFrames(client, values.Length);
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(JsonValueKind.String, m[i]["data"]!.GetValueKind());
                Assert.Equal(values[i], (string?)m[i]["data"]);
                Assert.Null(m[i]["encoding"]);
                Assert.Null(m[i]["id"]);
            }
            // A valid value with the header is still delivered as the JSON value it is.
            Assert.Equal(JsonValueKind.Object, m[3]["data"]!.GetValueKind());
            Assert.Equal([1, 2], m[3]["data"]!["valid"]!.AsArray().Select(n => (int)n!));
            Assert.Null(m[3]["encoding"]);
        }
    }

    [Fact]
    public async Task Confluent_records_labelled_json_that_are_not_utf8_arrive_as_base64_and_valid_json_as_json()
    {
        const string topic = "records.confluent-binary";
        byte[][] values =
        [
            [0xff, 0xfe, 0x7b, 0x7d],                         // not UTF-8 at all
            [.. "{\"s\":\""u8, 0xc3, 0x28, .. "\"}"u8],           // JSON-shaped, an invalid UTF-8 sequence inside the string
            Encoding.UTF8.GetBytes("{\"ok\":true,\"text\":\"é\"}"), // valid JSON
        ];
        await using var live = await SubscriberAsync(topic);

        using (var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig { BootstrapServers = Broker.KafkaBootstrap, Acks = Acks.All }).Build())
        {
            foreach (var value in values)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await producer.ProduceAsync(topic, new Message<Null, byte[]> { Value = value, Headers = new Headers { { "broker-ct", "json"u8.ToArray() } } }, cts.Token);
            }
        }

        await ExpectMessagesAsync(live, values.Length);
        await using var replay = await SubscriberAsync(topic, new { from = "earliest" });
        await ExpectMessagesAsync(replay, values.Length);
        foreach (var client in new[] { live, replay })
        {
            var m = AssertFrames(client, values.Length);
            for (var i = 0; i < 2; i++)
            {
                Assert.Equal("base64", (string?)m[i]["encoding"]);
                Assert.Equal(values[i], Convert.FromBase64String((string)m[i]["data"]!));
            }
            Assert.Null(m[2]["encoding"]);
            Assert.True((bool)m[2]["data"]!["ok"]!);
            Assert.Equal("é", (string?)m[2]["data"]!["text"]);
        }
    }
}
