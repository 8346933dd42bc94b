using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Akka.Actor;
using Broker.Core.Connections;
using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.Core.Topics;
using Broker.Protocol;
using Broker.Server.Admin;
using Confluent.Kafka;
using Microsoft.AspNetCore.Http.Features;

namespace Broker.Server.Publish;

/// <summary>
/// <c>POST /v1/publish</c> on the public HTTP port (not the admin port): services publish without a
/// WebSocket or a Kafka client and get the same <c>ack</c> (after acks=all) or the same error codes.
/// The body is one publish <c>{"topic","data","key"?}</c> or an array of them (at most
/// <c>broker.http-publish.max-batch</c>). An <c>Idempotency-Key</c> header plays the role of
/// <c>client</c> + <c>id</c> on WebSocket: the identity is <c>http</c>, the request id the key (item i
/// of a batch: <c>key.i</c>), so a resend is written once and answered with the original positions.
/// Single publish: 200 ack, or the error's status with the error object. Batch: 200 with one ack or
/// error per item, in request order (a body that is malformed as a whole: one error object).
/// </summary>
public static class HttpPublishEndpoint
{
    public const string Path = "/v1/publish";

    /// <summary>The client identity of HTTP publishes (<c>http.&lt;sub&gt;</c> once auth lands, issue 12).</summary>
    public const string ClientIdentity = "http";

    private const int MaxIdempotencyKeyLength = 56;

    /// <summary><c>conflict</c> (issue 13): <c>ErrorCodes.Conflict</c> once that lands.</summary>
    private const string Conflict = "conflict";

    public static void MapHttpPublish(this WebApplication app, HttpPublishSettings settings)
    {
        var endpoints = app.Services.GetRequiredService<BrokerEndpoints>();
        app.MapPost(Path, (HttpContext context) =>
            context.Connection.LocalPort == BrokerEndpoints.Port(endpoints.Main)
                ? HandleAsync(context, settings)
                : WriteAsync(context, StatusCodes.Status404NotFound, ServerFrames.Error(null, ErrorCodes.NotFound, $"{Path} is served on the main HTTP port")));
    }

    /// <summary>The HTTP status of each error code (docs/protocol.md, "HTTP publish").</summary>
    public static int StatusFor(string code) => code switch
    {
        ErrorCodes.BadRequest => StatusCodes.Status400BadRequest,
        ErrorCodes.Unauthorized => StatusCodes.Status401Unauthorized,
        ErrorCodes.Forbidden => StatusCodes.Status403Forbidden,
        ErrorCodes.NotFound => StatusCodes.Status404NotFound,
        Conflict => StatusCodes.Status409Conflict,
        ErrorCodes.TooLarge => StatusCodes.Status413PayloadTooLarge,
        ErrorCodes.RateLimited => StatusCodes.Status429TooManyRequests,
        ErrorCodes.Unavailable or ErrorCodes.Overloaded => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static async Task HandleAsync(HttpContext context, HttpPublishSettings settings)
    {
        var node = context.RequestServices.GetRequiredService<NodeServices>();
        var keys = context.Request.Headers["Idempotency-Key"];
        string? key = null;
        if (keys.Count > 0)
        {
            key = keys.ToString();
            if (keys.Count > 1 || !IsValidKey(key))
            {
                await Refuse(context, ErrorCodes.BadRequest, $"Idempotency-Key must be one value of 1-{MaxIdempotencyKeyLength} characters of A-Z a-z 0-9 . _ -");
                return;
            }
        }

        byte[] body;
        try
        {
            body = await ReadBodyAsync(context, settings.MaxBodyBytes);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await Refuse(context, ErrorCodes.TooLarge, $"the body is larger than {settings.MaxBodyBytes} bytes ({HttpPublishSettings.Section}.max-body-bytes)");
            return;
        }
        if (!Utf8.IsValid(body))
        {
            await Refuse(context, ErrorCodes.BadRequest, "malformed JSON: invalid UTF-8");
            return;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            await Refuse(context, ErrorCodes.BadRequest, "malformed JSON");
            return;
        }
        using (document)
        {
            var root = document.RootElement;
            switch (root.ValueKind)
            {
                case JsonValueKind.Object:
                {
                    var (code, frame) = await PublishAsync(node, await PrepareAsync(node, root, key), context.RequestAborted);
                    if (code == ErrorCodes.RateLimited) context.Response.Headers.RetryAfter = "1";
                    await WriteAsync(context, code is null ? StatusCodes.Status200OK : StatusFor(code), frame);
                    return;
                }
                case JsonValueKind.Array:
                {
                    var count = root.GetArrayLength();
                    if (count > settings.MaxBatch)
                    {
                        await Refuse(context, ErrorCodes.TooLarge, $"{count} publishes; at most {settings.MaxBatch} per request ({HttpPublishSettings.Section}.max-batch)");
                        return;
                    }
                    // Each item's publish is handed to its topic before the next item's, so items of one
                    // topic are written in request order; the acks are awaited together.
                    var results = new Task<(string? Code, byte[] Frame)>[count];
                    var i = 0;
                    foreach (var item in root.EnumerateArray())
                    {
                        var prepared = await PrepareAsync(node, item, key is null ? null : $"{key}.{i}");
                        results[i++] = PublishAsync(node, prepared, context.RequestAborted);
                    }
                    var frames = await Task.WhenAll(results);
                    await WriteArrayAsync(context, frames.Select(r => r.Frame));
                    return;
                }
                default:
                    await Refuse(context, ErrorCodes.BadRequest, "the body must be a JSON object {\"topic\",\"data\",\"key\"} or an array of them");
                    return;
            }
        }
    }

    private static bool IsValidKey(string key) => key.Length <= MaxIdempotencyKeyLength && TopicName.IsValidIdentity(key);

    private static async Task<byte[]> ReadBodyAsync(HttpContext context, long max)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = max;
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        return buffer.ToArray();
    }

    /// <summary>A publish ready to hand to its topic, or the error that refuses it.</summary>
    private readonly record struct Prepared(PublishRequest? Request, string? ErrorCode, string? ErrorMessage);

    /// <summary>Validates one item (as the WebSocket decoder validates a <c>publish</c>) and checks its topic's mapping.</summary>
    private static async Task<Prepared> PrepareAsync(NodeServices node, JsonElement item, string? requestId)
    {
        if (item.ValueKind != JsonValueKind.Object) return Refused(ErrorCodes.BadRequest, "each publish must be a JSON object {\"topic\",\"data\",\"key\"}");
        if (!item.TryGetProperty("topic"u8, out var topicValue) || topicValue.ValueKind == JsonValueKind.Null) return Refused(ErrorCodes.BadRequest, "missing field: topic");
        if (topicValue.ValueKind != JsonValueKind.String) return Refused(ErrorCodes.BadRequest, "topic must be a string");
        var topic = topicValue.GetString()!;
        if (!TopicName.IsValid(topic)) return Refused(ErrorCodes.BadRequest, $"invalid topic: must be 1-{TopicName.MaxLength} characters of A-Z a-z 0-9 . _ -");
        if (!item.TryGetProperty("data"u8, out var data)) return Refused(ErrorCodes.BadRequest, "missing field: data");
        string? key = null;
        if (item.TryGetProperty("key"u8, out var keyValue) && keyValue.ValueKind != JsonValueKind.Null)
        {
            if (keyValue.ValueKind != JsonValueKind.String) return Refused(ErrorCodes.BadRequest, "key must be a string");
            key = keyValue.GetString()!;
            var limits = node.Settings.Limits;
            if (Encoding.UTF8.GetByteCount(key) > limits.MaxKeyBytes) return Refused(ErrorCodes.BadRequest, $"key must be at most {limits.MaxKeyBytes} bytes");
        }
        var dataLength = JsonMarshal.GetRawUtf8Value(data).Length;
        if (dataLength > node.Settings.MaxDataBytes)
            return Refused(ErrorCodes.TooLarge, $"data is {dataLength} bytes; the limit is {node.Settings.MaxDataBytes}");
        var raw = JsonMarshal.GetRawUtf8Value(data).ToArray();

        // The topic's mapping, as a WebSocket publish checks it (Connection.Publish; duplicated here until
        // the publish path is shared): unmapped topics, read-only namespaces, topics that must exist.
        var settings = node.Log.Settings;
        if (settings.Resolve(topic) is not { } mapping)
        {
            return settings.Unmapped == UnmappedTopics.Forbidden
                ? Refused(ErrorCodes.Forbidden, $"topic {topic} is in no namespace")
                : Refused(ErrorCodes.NotFound, $"topic {topic} is in no namespace");
        }
        if (mapping.ReadOnly) return Refused(ErrorCodes.Forbidden, $"topic {topic} is read-only");
        if (!mapping.Create)
        {
            try
            {
                // Checked once per node (cached), so a missing topic is not_found, not unavailable.
                using var timeout = new CancellationTokenSource(node.Settings.RequestTimeout);
                await node.Log.EnsureTopicAsync(mapping, timeout.Token);
            }
            catch (TopicNotFoundException e)
            {
                return Refused(ErrorCodes.NotFound, e.Message);
            }
            catch (Exception e) when (e is KafkaException or TimeoutException or OperationCanceledException)
            {
                return Refused(ErrorCodes.Unavailable, "the log is unavailable; retry");
            }
        }
        return new Prepared(new PublishRequest(requestId, topic, raw, key), null, null);
    }

    private static Prepared Refused(string code, string message) => new(null, code, message);

    /// <summary>Hands the publish to its topic's actor (the one writer of the topic) and waits for the ack.</summary>
    private static async Task<(string? Code, byte[] Frame)> PublishAsync(NodeServices node, Prepared prepared, CancellationToken aborted)
    {
        if (prepared.Request is not { } p) return (prepared.ErrorCode, ServerFrames.Error(null, prepared.ErrorCode!, prepared.ErrorMessage!));
        var started = Stopwatch.GetTimestamp();
        object reply;
        try
        {
            reply = await node.Topics.Ask<object>(
                new TopicCommands.Publish(p.Topic, p.Data, p.Key, p.Id is null ? null : ClientIdentity, p.Id), node.Settings.RequestTimeout, aborted);
        }
        catch (AskTimeoutException)
        {
            return Error(ErrorCodes.Unavailable, "the log did not acknowledge the message in time; retry");
        }
        catch (TaskCanceledException) when (aborted.IsCancellationRequested)
        {
            return Error(ErrorCodes.Unavailable, "the request was aborted");
        }
        switch (reply)
        {
            case TopicCommands.PublishAck a:
                node.Metrics?.MessageIn();
                node.Metrics?.PublishAckLatency.ObserveSince(started);
                return (null, ServerFrames.Ack(null, a.Topic, a.Pos));
            case TopicCommands.PublishRejected r:
                return Error(r.Code, r.Message);
            default:
                return Error(ErrorCodes.Internal, "unexpected reply");
        }
    }

    private static (string? Code, byte[] Frame) Error(string code, string message) => (code, ServerFrames.Error(null, code, message));

    private static Task Refuse(HttpContext context, string code, string message) =>
        WriteAsync(context, StatusFor(code), ServerFrames.Error(null, code, message));

    private static async Task WriteAsync(HttpContext context, int status, byte[] json)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(json);
    }

    private static async Task WriteArrayAsync(HttpContext context, IEnumerable<byte[]> items)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        var body = context.Response.Body;
        await body.WriteAsync("["u8.ToArray());
        var first = true;
        foreach (var item in items)
        {
            if (!first) await body.WriteAsync(","u8.ToArray());
            first = false;
            await body.WriteAsync(item);
        }
        await body.WriteAsync("]"u8.ToArray());
    }
}
