using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.Client;
using Broker.IntegrationTests.Infrastructure;
using Broker.Server.Publish;

namespace Broker.IntegrationTests.Client;

/// <summary>
/// One broker with namespaces that produce every refusal: <c>pub.&gt;</c> open, <c>ro.&gt;</c> read-only,
/// <c>gone.&gt;</c> must exist (it does not), anything else in no namespace (not_found); batches of at most 10
/// items and 100 KiB.
/// </summary>
public sealed class HttpPublishFixture : IAsyncLifetime
{
    public TestBroker Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await TestBroker.StartAsync(
        new Dictionary<string, string>
        {
            ["broker.namespaces-default"] = "not_found",
            ["broker.http-publish.max-batch"] = "10",
            ["broker.http-publish.max-body-bytes"] = "100 KiB",
        },
        hocon: """
            broker.namespaces = [
              { pattern = "pub.>" }
              { pattern = "ro.>", read-only = true }
              { pattern = "gone.>", create = false }
            ]
            """);

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

/// <summary>What a POST /v1/publish answered: status, body, and the <c>WWW-Authenticate</c> and <c>Retry-After</c> headers ("" / null when absent).</summary>
internal sealed record HttpPublishResponse(HttpStatusCode Status, JsonNode Body, string WwwAuthenticate, TimeSpan? RetryAfter);

/// <summary>POST /v1/publish: the ack, the idempotency key, every error code, batches; and BrokerHttpPublisher against it.</summary>
public sealed class HttpPublishTests(HttpPublishFixture fixture) : IClassFixture<HttpPublishFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly string Big = new('x', 61 * 1024); // over max-data-bytes (60 KiB)

    private TestBroker Broker => fixture.Broker;

    internal static async Task<(HttpStatusCode Status, JsonNode Body)> Post(string baseAddress, string body, string? idempotencyKey = null)
    {
        var response = await PostAsync(baseAddress, body, idempotencyKey);
        return (response.Status, response.Body);
    }

    /// <summary>A POST /v1/publish with the optional headers a test varies; the answer with the headers tests check.</summary>
    internal static async Task<HttpPublishResponse> PostAsync(string baseAddress, string body, string? idempotencyKey = null, string? token = null,
        string? origin = null, string query = "", string scheme = "Bearer")
    {
        using var http = new HttpClient { Timeout = Timeout };
        using var request = new HttpRequestMessage(HttpMethod.Post, baseAddress + HttpPublishEndpoint.Path + query) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (idempotencyKey is not null) request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
        if (token is not null) request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue(scheme, token);
        if (origin is not null) request.Headers.TryAddWithoutValidation("Origin", origin);
        using var response = await http.SendAsync(request);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return new HttpPublishResponse(response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!,
            response.Headers.WwwAuthenticate.ToString(), response.Headers.RetryAfter?.Delta);
    }

    private static string NewKey(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    [Fact]
    public async Task A_publish_is_acknowledged_with_its_position_and_reaches_subscribers()
    {
        const string topic = "pub.ack";
        await using var client = await BrokerClient.ConnectAsync(Broker.WsUri);
        await using var sub = await client.SubscribeAsync(topic);
        await using var messages = sub.GetAsyncEnumerator();

        var (status, ack) = await Post(Broker.HttpAddress, """{"topic":"pub.ack","data":{"total":9.5,"items":["a"]},"key":"cust-1","extra":"ignored"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("ack", (string?)ack["type"]);
        Assert.Equal(topic, (string?)ack["topic"]);
        Assert.Null(ack["id"]);

        Assert.True(await messages.MoveNextAsync().AsTask().WaitAsync(Timeout));
        var m = messages.Current;
        Assert.Equal((string?)ack["pos"], m.Pos);
        Assert.Equal("cust-1", m.Key);
        Assert.Equal("""{"total":9.5,"items":["a"]}""", Encoding.UTF8.GetString(m.RawData.Span));
    }

    [Fact]
    public async Task A_resend_with_the_same_idempotency_key_is_written_once_and_answered_with_the_original_positions()
    {
        const string topic = "pub.idempotent";
        var key = NewKey("order");
        var first = await Post(Broker.HttpAddress, """{"topic":"pub.idempotent","data":1}""", key);
        var again = await Post(Broker.HttpAddress, """{"topic":"pub.idempotent","data":1}""", key);
        Assert.Equal(HttpStatusCode.OK, again.Status);
        Assert.Equal(first.Body.ToJsonString(), again.Body.ToJsonString());

        var batchKey = NewKey("batch");
        const string batch = """[{"topic":"pub.idempotent","data":"a"},{"topic":"pub.idempotent","data":"b"},{"topic":"pub.idempotent","data":"c"}]""";
        var firstBatch = await Post(Broker.HttpAddress, batch, batchKey);
        var resentBatch = await Post(Broker.HttpAddress, batch, batchKey);
        Assert.Equal(firstBatch.Body.ToJsonString(), resentBatch.Body.ToJsonString());
        Assert.Equal(3, firstBatch.Body.AsArray().Count(a => (string?)a!["type"] == "ack"));

        // The log holds each once, identified as the anonymous client http: with the key (item i of a batch: key#i).
        var log = LogReadBack.All(Broker.KafkaBootstrap, topic);
        Assert.Equal(4, log.Count);
        Assert.All(log, r => Assert.Equal(HttpPublishEndpoint.ClientPrefix, r.Headers["broker-client"]));
        Assert.Equal([key, $"{batchKey}#0", $"{batchKey}#1", $"{batchKey}#2"], log.Select(r => r.Headers["broker-id"]));
        Assert.Equal((string?)first.Body["pos"], log[0].Pos);
        Assert.Equal(firstBatch.Body.AsArray().Select(a => (string?)a!["pos"]), log.Skip(1).Select(r => r.Pos));
    }

    [Theory]
    [InlineData("{", null, HttpStatusCode.BadRequest, "bad_request", "malformed JSON")]
    [InlineData("42", null, HttpStatusCode.BadRequest, "bad_request", "JSON object")]
    [InlineData("""{"data":1}""", null, HttpStatusCode.BadRequest, "bad_request", "missing field: topic")]
    [InlineData("""{"topic":"has space","data":1}""", null, HttpStatusCode.BadRequest, "bad_request", "invalid topic")]
    [InlineData("""{"topic":"pub.x"}""", null, HttpStatusCode.BadRequest, "bad_request", "missing field: data")]
    [InlineData("""{"topic":"pub.x","data":1,"key":7}""", null, HttpStatusCode.BadRequest, "bad_request", "key must be a string")]
    [InlineData("""{"topic":"pub.x","data":1}""", "not a key", HttpStatusCode.BadRequest, "bad_request", "Idempotency-Key")]
    [InlineData("""{"topic":"other.x","data":1}""", null, HttpStatusCode.NotFound, "not_found", "in no namespace")]
    [InlineData("""{"topic":"gone.x","data":1}""", null, HttpStatusCode.NotFound, "not_found", "does not exist")]
    [InlineData("""{"topic":"ro.prices","data":1}""", null, HttpStatusCode.Forbidden, "forbidden", "read-only")]
    [InlineData("""{"topic":"pub.x","data":"BIG"}""", null, HttpStatusCode.RequestEntityTooLarge, "too_large", "the limit is")]
    [InlineData("[1,2,3,4,5,6,7,8,9,10,11]", null, HttpStatusCode.RequestEntityTooLarge, "too_large", "at most 10")]
    [InlineData("""[{"topic":"pub.x","data":"BIG"},{"topic":"pub.x","data":"BIG"}]""", null, HttpStatusCode.RequestEntityTooLarge, "too_large", "max-body-bytes")]
    public async Task Each_refusal_has_its_code_and_status(string body, string? key, HttpStatusCode status, string code, string message)
    {
        var (actual, error) = await Post(Broker.HttpAddress, body.Replace("BIG", Big), key);
        Assert.Equal(status, actual);
        Assert.Equal("error", (string?)error["type"]);
        Assert.Equal(code, (string?)error["code"]);
        Assert.Contains(message, (string?)error["message"]);
    }

    [Fact]
    public async Task A_batch_answers_each_item_in_request_order_and_writes_the_accepted_ones_in_that_order()
    {
        var body = new JsonArray(
            new JsonObject { ["topic"] = "pub.batch", ["data"] = 1 },
            new JsonObject { ["topic"] = "bad topic", ["data"] = 2 },
            new JsonObject { ["topic"] = "ro.batch", ["data"] = 3 },
            new JsonObject { ["topic"] = "pub.batch", ["data"] = Big },
            5,
            new JsonObject { ["topic"] = "pub.batch", ["data"] = 6, ["key"] = "k" });
        var (status, results) = await Post(Broker.HttpAddress, body.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, status);
        var items = results.AsArray();
        Assert.Equal(["ack", "bad_request", "forbidden", "too_large", "bad_request", "ack"],
            items.Select(i => (string?)i!["type"] == "ack" ? "ack" : (string?)i["code"]));
        var log = LogReadBack.All(Broker.KafkaBootstrap, "pub.batch");
        Assert.Equal(["1", "6"], log.Select(r => r.Text));
        Assert.Equal([(string?)items[0]!["pos"], (string?)items[5]!["pos"]], log.Select(r => r.Pos));
    }

    [Fact]
    public async Task The_admin_port_does_not_serve_publishes()
    {
        var (status, error) = await Post(Broker.AdminAddress, """{"topic":"pub.admin","data":1}""");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("not_found", (string?)error["code"]);
    }

    [Fact]
    public async Task BrokerHttpPublisher_publishes_and_batches_against_the_broker()
    {
        using var publisher = new BrokerHttpPublisher(new Uri(Broker.HttpAddress));
        var key = NewKey("svc");
        var ack = await publisher.PublishAsync("pub.publisher", JsonSerializer.SerializeToElement(new { n = 1 }), key: "k", idempotencyKey: key);
        Assert.Equal(ack, await publisher.PublishAsync("pub.publisher", JsonSerializer.SerializeToElement(new { n = 1 }), key: "k", idempotencyKey: key));
        var refused = await Assert.ThrowsAsync<BrokerErrorException>(() => publisher.PublishAsync("ro.publisher", "1"u8.ToArray()));
        Assert.Equal(BrokerErrorCodes.Forbidden, refused.Code);
        Assert.Equal(403, refused.HttpStatus);

        var results = await publisher.PublishBatchAsync([
            HttpPublishItem.Create("pub.publisher", "2"u8.ToArray()),
            HttpPublishItem.Create("ro.publisher", "3"u8.ToArray()),
            HttpPublishItem.Create("pub.publisher", "4"u8.ToArray()),
        ]);
        Assert.True(results[0].IsAck);
        Assert.Equal(BrokerErrorCodes.Forbidden, results[1].Error!.Code);
        Assert.True(results[2].IsAck);
        Assert.Equal(["{\"n\":1}", "2", "4"], LogReadBack.All(Broker.KafkaBootstrap, "pub.publisher").Select(r => r.Text));
    }
}
