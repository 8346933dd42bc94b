using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Broker.Client.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Broker.Client.Tests;

/// <summary>BrokerHttpPublisher against a scripted <c>POST /v1/publish</c>: keys, retries, batches.</summary>
public sealed class HttpPublisherTests : IAsyncLifetime
{
    private FakeBroker _fake = null!;
    private readonly ConcurrentQueue<(string? Key, JsonNode Body, string? Auth)> _requests = new();
    private readonly ConcurrentQueue<(int Status, string Body, string? RetryAfter)> _answers = new();

    public async Task InitializeAsync()
    {
        _fake = await FakeBroker.StartAsync();
        _fake.HttpHandler = async context =>
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var body = JsonNode.Parse(await reader.ReadToEndAsync())!;
            _requests.Enqueue((context.Request.Headers["Idempotency-Key"].ToString() is { Length: > 0 } k ? k : null, body,
                context.Request.Headers.Authorization.ToString() is { Length: > 0 } a ? a : null));
            Assert.True(_answers.TryDequeue(out var answer), "an unexpected request");
            context.Response.StatusCode = answer.Status;
            context.Response.ContentType = "application/json";
            if (answer.RetryAfter is not null) context.Response.Headers.RetryAfter = answer.RetryAfter;
            await context.Response.WriteAsync(answer.Body);
        };
    }

    public async Task DisposeAsync() => await _fake.DisposeAsync();

    private BrokerHttpPublisher Publisher(Func<CancellationToken, ValueTask<string>>? token = null) => new(_fake.HttpUri, new BrokerHttpPublisherOptions
    {
        Backoff = new ReconnectOptions { InitialDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(20) },
        TokenProvider = token,
    });

    private void Answer(int status, string body, string? retryAfter = null) => _answers.Enqueue((status, body, retryAfter));

    [Fact]
    public async Task A_transient_refusal_is_retried_with_the_same_idempotency_key()
    {
        Answer(503, """{"type":"error","code":"unavailable","message":"the log did not acknowledge the message in time; retry"}""");
        Answer(200, """{"type":"ack","topic":"orders","pos":"AQEB"}""");
        using var publisher = Publisher(_ => ValueTask.FromResult("jwt"));
        var ack = await publisher.PublishAsync("orders", Json.Of(new { id = 1 }), key: "cust-1", idempotencyKey: "order-1").WaitAsync(FakeBroker.Timeout);
        Assert.Equal(new Ack("orders", "AQEB"), ack);
        var requests = _requests.ToArray();
        Assert.Equal(2, requests.Length);
        Assert.All(requests, r => Assert.Equal("order-1", r.Key));
        Assert.All(requests, r => Assert.Equal("Bearer jwt", r.Auth));
        Assert.Equal("""{"topic":"orders","key":"cust-1","data":{"id":1}}""", requests[0].Body.ToJsonString());
    }

    [Fact]
    public async Task A_permanent_refusal_throws_at_once_with_the_code_and_status()
    {
        Answer(403, """{"type":"error","code":"forbidden","message":"topic prices is read-only"}""");
        using var publisher = Publisher();
        var e = await Assert.ThrowsAsync<BrokerErrorException>(() => publisher.PublishAsync("prices", Json.Of(1)).WaitAsync(FakeBroker.Timeout));
        Assert.Equal("forbidden", e.Code);
        Assert.Equal(403, e.HttpStatus);
        Assert.Single(_requests);
    }

    [Fact]
    public async Task Without_a_key_one_is_generated_and_kept_across_the_retries_of_one_publish()
    {
        Answer(429, """{"type":"error","code":"rate_limited","message":"slow down"}""", retryAfter: "0");
        Answer(200, """{"type":"ack","topic":"t","pos":"AQEB"}""");
        Answer(200, """{"type":"ack","topic":"t","pos":"AQEC"}""");
        using var publisher = Publisher();
        await publisher.PublishAsync("t", Json.Of(1)).WaitAsync(FakeBroker.Timeout);
        await publisher.PublishAsync("t", Json.Of(2)).WaitAsync(FakeBroker.Timeout);
        var keys = _requests.Select(r => r.Key).ToArray();
        Assert.Equal(3, keys.Length);
        Assert.NotNull(keys[0]);
        Assert.Equal(keys[0], keys[1]);
        Assert.NotEqual(keys[1], keys[2]);
    }

    [Fact]
    public async Task A_batch_with_transient_item_errors_is_resent_whole_and_returns_one_result_per_item()
    {
        Answer(200, """[{"type":"ack","topic":"a","pos":"AQEB"},{"type":"error","code":"unavailable","message":"retry"},{"type":"error","code":"bad_request","message":"invalid topic"}]""");
        Answer(200, """[{"type":"ack","topic":"a","pos":"AQEB"},{"type":"ack","topic":"b","pos":"AQEB"},{"type":"error","code":"bad_request","message":"invalid topic"}]""");
        using var publisher = Publisher();
        var results = await publisher.PublishBatchAsync(
            [HttpPublishItem.Create("a", Json.Of(1)), HttpPublishItem.Create("b", "[1,2]"u8.ToArray(), "k"), HttpPublishItem.Create("c", Json.Of(3))],
            idempotencyKey: "batch-9").WaitAsync(FakeBroker.Timeout);
        Assert.Equal(["AQEB", "AQEB", null], results.Select(r => r.Ack?.Pos));
        Assert.Equal("bad_request", results[2].Error!.Code);
        var requests = _requests.ToArray();
        Assert.Equal(2, requests.Length);
        Assert.All(requests, r => Assert.Equal("batch-9", r.Key));
        Assert.Equal("""[{"topic":"a","data":1},{"topic":"b","key":"k","data":[1,2]},{"topic":"c","data":3}]""", requests[1].Body.ToJsonString());
    }

    [Fact]
    public async Task A_401_is_sent_once_more_with_a_new_token_from_the_provider_and_then_thrown()
    {
        const string expired = """{"type":"error","code":"unauthorized","message":"the token expired at 2025-01-01 00:00:00Z"}""";
        Answer(401, expired);
        Answer(200, """{"type":"ack","topic":"t","pos":"AQEB"}""");
        Answer(401, expired);
        Answer(401, expired);
        var issued = 0;
        using var publisher = Publisher(_ => ValueTask.FromResult($"jwt-{Interlocked.Increment(ref issued)}"));
        Assert.Equal(new Ack("t", "AQEB"), await publisher.PublishAsync("t", Json.Of(1), idempotencyKey: "k-1").WaitAsync(FakeBroker.Timeout));
        var e = await Assert.ThrowsAsync<BrokerErrorException>(() => publisher.PublishAsync("t", Json.Of(2)).WaitAsync(FakeBroker.Timeout));
        Assert.Equal("unauthorized", e.Code);
        Assert.Equal(401, e.HttpStatus);
        Assert.Equal(["Bearer jwt-1", "Bearer jwt-2", "Bearer jwt-3", "Bearer jwt-4"], _requests.Select(r => r.Auth));
        Assert.Equal(["k-1", "k-1"], _requests.Take(2).Select(r => r.Key));
    }

    [Fact]
    public void Invalid_keys_and_data_are_refused_before_anything_is_sent()
    {
        using var publisher = Publisher();
        Assert.Throws<ArgumentException>(() => { _ = publisher.PublishAsync("t", Json.Of(1), idempotencyKey: "has space"); });
        Assert.Throws<ArgumentException>(() => { _ = publisher.PublishAsync("t", Json.Of(1), idempotencyKey: new string('k', 57)); });
        Assert.Throws<ArgumentException>(() => HttpPublishItem.Create("t", "1 2"u8.ToArray()));
        Assert.Throws<ArgumentException>(() => HttpPublishItem.Create("bad topic", Json.Of(1)));
        Assert.Empty(_requests);
    }
}
