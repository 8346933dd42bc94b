using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Broker.Core.Connections;
using Broker.Core.Log;
using Broker.Core.Security;
using Broker.Protocol;
using Broker.Server.Admin;
using Broker.Server.Security;
using Confluent.Kafka;
using Microsoft.AspNetCore.Http.Features;

namespace Broker.Server.Publish;

/// <summary>
/// <c>POST /v1/publish</c> on the public HTTP port (not the admin port): services publish without a
/// WebSocket or a Kafka client and get the same <c>ack</c> (after acks=all) or the same error codes.
/// The body is one publish <c>{"topic","data","key"?}</c> or an array of them (at most
/// <c>broker.http-publish.max-batch</c>). The security model is the WebSocket one: the origin and the
/// <c>Authorization: Bearer</c> token are checked by <see cref="HttpPublishGate"/> before the body is
/// read (403, 401), and each item by <see cref="NodeSecurity.CheckPublishAsync"/> (namespace level and
/// grants, topic creation, the subject's publish rates) before it reaches the publisher. An
/// <c>Idempotency-Key</c> header plays the role of <c>client</c> + <c>id</c> on WebSocket: the client
/// id is <c>http:&lt;sub&gt;</c> (<see cref="ClientId"/>), the request id the key (item i of a batch:
/// <c>key#i</c>), so a resend is written once and answered with the original positions.
/// Single publish: 200 ack, or the error's status with the error object. Batch: 200 with one ack or
/// error per item, in request order (a request refused as a whole: one error object).
/// </summary>
public static class HttpPublishEndpoint
{
    public const string Path = "/v1/publish";

    /// <summary>
    /// The prefix of HTTP publishes' client ids. A WebSocket <c>?client=</c> cannot contain ':' (and an
    /// authenticated one is <c>&lt;sub&gt;/&lt;client&gt;</c>), so no WebSocket client shares HTTP
    /// publishes' retry window.
    /// </summary>
    public const string ClientPrefix = "http:";

    /// <summary>
    /// The client id of <paramref name="who"/>'s HTTP publishes, written as the record's <c>broker-client</c>
    /// header: <c>http:&lt;sub&gt;</c>, or <c>http:</c> when anonymous. An <c>Idempotency-Key</c> is
    /// remembered per client id, so each subject has its own keys.
    /// </summary>
    public static string ClientId(ClientIdentity who) => ClientPrefix + who.Subject;

    private const int MaxIdempotencyKeyLength = 56;

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
        ErrorCodes.Conflict => StatusCodes.Status409Conflict,
        ErrorCodes.TooLarge => StatusCodes.Status413PayloadTooLarge,
        ErrorCodes.RateLimited => StatusCodes.Status429TooManyRequests,
        ErrorCodes.Unavailable or ErrorCodes.Overloaded => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static async Task HandleAsync(HttpContext context, HttpPublishSettings settings)
    {
        var node = context.RequestServices.GetRequiredService<NodeServices>();
        var security = context.RequestServices.GetRequiredService<NodeSecurity>();
        var admission = await context.RequestServices.GetRequiredService<HttpPublishGate>().AdmitAsync(context.Request);
        if (admission.Identity is not { } who)
        {
            if (admission.Challenge is { } challenge) context.Response.Headers.WWWAuthenticate = challenge;
            await WriteAsync(context, admission.Status, ServerFrames.Error(null, admission.Refusal));
            return;
        }
        var clientId = ClientId(who);
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
                    var item = await AuthorizeAsync(security, who, Validate(node, root, key));
                    var (error, frame) = await PublishAsync(node, clientId, item);
                    if (error is { Code: ErrorCodes.RateLimited } limited) context.Response.Headers.RetryAfter = RetryAfterSeconds(limited.RetryAfterMs ?? 1000);
                    await WriteAsync(context, error is null ? StatusCodes.Status200OK : StatusFor(error.Value.Code), frame);
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
                    var items = root.EnumerateArray().Select((item, i) => Validate(node, item, key is null ? null : $"{key}#{i}")).ToList();
                    // Checked one after another, in request order, before any is handed over: the checks
                    // may await (topic creation), and the hand-over below must not.
                    for (var i = 0; i < items.Count; i++) items[i] = await AuthorizeAsync(security, who, items[i]);
                    await EnsureTopicsAsync(node, items);
                    // Each item is handed to its topic's writer before the next one (the publisher asks the
                    // writer before its first await), so items of one topic are written in request order;
                    // the outcomes are awaited together.
                    var frames = await Task.WhenAll(items.Select(item => PublishAsync(node, clientId, item)).ToList());
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

    /// <summary>A validated publish, or the error that refuses it.</summary>
    private readonly record struct Item(PublishRequest? Request, ProtocolError Error);

    /// <summary>Validates one item as the WebSocket decoder validates a <c>publish</c> (the topic's mapping is the publisher's).</summary>
    private static Item Validate(NodeServices node, JsonElement item, string? requestId)
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
        var raw = JsonMarshal.GetRawUtf8Value(data);
        if (raw.Length > node.Settings.MaxDataBytes)
            return Refused(ErrorCodes.TooLarge, $"data is {raw.Length} bytes; the limit is {node.Settings.MaxDataBytes}");
        return new Item(new PublishRequest(requestId, topic, raw.ToArray(), key), default);
    }

    private static Item Refused(string code, string message) => new(null, new ProtocolError(code, message));

    /// <summary>
    /// The checks a WebSocket publish gets from its connection's security (<see cref="ConnectionSecurity.CheckPublishAsync"/>),
    /// without the per-connection rates: may <paramref name="who"/> publish this item now. A refused item keeps its error.
    /// </summary>
    private static async ValueTask<Item> AuthorizeAsync(NodeSecurity security, ClientIdentity who, Item item) =>
        item.Request is { } p && await security.CheckPublishAsync(who, p.Topic, p.Data.Length) is { } denied ? new Item(null, denied) : item;

    /// <summary>The <c>Retry-After</c> seconds of a <c>retry_after_ms</c> (at least 1: the header has whole seconds).</summary>
    private static string RetryAfterSeconds(long ms) => Math.Max(1, (ms + 999) / 1000).ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Makes sure the Kafka topics of the batch's <c>create = false</c> namespaces were checked on this node
    /// (the check is cached), so that handing the items to the publisher one after another reaches each
    /// topic's writer in request order. A failed check is reported by the publisher, per item.
    /// </summary>
    private static async Task EnsureTopicsAsync(NodeServices node, IEnumerable<Item> items)
    {
        var settings = node.Log.Settings;
        foreach (var topic in items.Where(i => i.Request is not null).Select(i => i.Request!.Topic).Distinct(StringComparer.Ordinal))
        {
            if (settings.Resolve(topic) is not { Create: false, ReadOnly: false } mapping) continue;
            try
            {
                using var timeout = new CancellationTokenSource(node.Settings.RequestTimeout);
                await node.Log.EnsureTopicAsync(mapping, timeout.Token);
            }
            catch (Exception e) when (e is TopicNotFoundException or KafkaException or TimeoutException or OperationCanceledException)
            {
            }
        }
    }

    /// <summary>Hands the publish to its topic's writer through the node's publisher (the one WebSocket publishes use) and waits for the outcome.</summary>
    private static async Task<(ProtocolError? Error, byte[] Frame)> PublishAsync(NodeServices node, string clientId, Item item)
    {
        if (item.Request is not { } p) return Error(item.Error);
        var outcome = await node.Publisher.PublishAsync(p.Topic, p.Data, p.Key, clientId, p.Id);
        return outcome.Acked ? (null, ServerFrames.Ack(null, p.Topic, outcome.Pos!)) : Error(outcome.Error);
    }

    /// <summary>An error and its object (with <c>retry_after_ms</c> when it has one).</summary>
    private static (ProtocolError? Error, byte[] Frame) Error(ProtocolError error) => (error, ServerFrames.Error(null, error));

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
