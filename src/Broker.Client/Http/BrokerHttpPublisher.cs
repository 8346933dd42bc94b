using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Broker.Client.Internal;

namespace Broker.Client;

/// <summary>Options of a <see cref="BrokerHttpPublisher"/>.</summary>
public sealed class BrokerHttpPublisherOptions
{
    /// <summary>Attempts per publish (or batch) before the last failure is thrown. Default 5.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Delays between attempts (the same exponential backoff with jitter as reconnects); a <c>Retry-After</c> from the broker wins when longer.</summary>
    public ReconnectOptions Backoff { get; init; } = new();

    /// <summary>Time one attempt may take. Default 30 s.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Supplies the token (JWT) sent as <c>Authorization: Bearer</c> with every request, as
    /// <see cref="BrokerClientOptions.TokenProvider"/> does for the WebSocket client: needed with
    /// <c>broker.auth.mode = required</c>, and for topics whose namespace needs a token or a grant
    /// (<c>pub_topics</c>). It is asked on every attempt, so it can cache a token and renew it before
    /// it expires; a request answered 401 is sent once more with a token asked for anew, then throws
    /// <see cref="BrokerErrorException"/> <c>unauthorized</c>. Null: no token (anonymous).
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? TokenProvider { get; init; }
}

/// <summary>
/// Publishes over HTTP (<c>POST /v1/publish</c> on the broker's HTTP port): for services that want
/// neither a WebSocket nor a Kafka client. Each request carries an <c>Idempotency-Key</c> (yours, or
/// one generated per call), so a retry after a timeout or a transient error (<c>unavailable</c>,
/// <c>overloaded</c>, <c>rate_limited</c>, HTTP 502/503/504, a broken connection) is written once and
/// answered with the original positions. Other errors throw <see cref="BrokerErrorException"/> at once
/// (a 401 with a <see cref="BrokerHttpPublisherOptions.TokenProvider"/>: after one more attempt with a
/// new token). On a broker with auth, the publishes are written as client <c>http:&lt;sub&gt;</c>, and
/// idempotency keys are remembered per subject. Thread-safe.
/// </summary>
public sealed class BrokerHttpPublisher : IDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _publishUri;
    private readonly BrokerHttpPublisherOptions _options;

    /// <summary>A publisher for the broker at <paramref name="baseAddress"/> (e.g. <c>http://127.0.0.1:8080</c>) with an HttpClient of its own.</summary>
    public BrokerHttpPublisher(Uri baseAddress, BrokerHttpPublisherOptions? options = null)
        : this(new HttpClient { Timeout = Timeout.InfiniteTimeSpan }, baseAddress, options, ownsHttp: true)
    {
    }

    /// <summary>A publisher on <paramref name="http"/> (e.g. from IHttpClientFactory), for the broker at <paramref name="baseAddress"/> or else <see cref="HttpClient.BaseAddress"/>.</summary>
    public BrokerHttpPublisher(HttpClient http, Uri? baseAddress = null, BrokerHttpPublisherOptions? options = null)
        : this(http, baseAddress, options, ownsHttp: false)
    {
    }

    private BrokerHttpPublisher(HttpClient http, Uri? baseAddress, BrokerHttpPublisherOptions? options, bool ownsHttp)
    {
        ArgumentNullException.ThrowIfNull(http);
        var root = baseAddress ?? http.BaseAddress ?? throw new ArgumentException("a base address is required", nameof(baseAddress));
        if (!root.IsAbsoluteUri || root.Scheme is not ("http" or "https")) throw new ArgumentException($"the base address must be an absolute http(s) URI: {root}", nameof(baseAddress));
        _options = options ?? new BrokerHttpPublisherOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxAttempts, 1, nameof(options));
        _options.Backoff.Validate();
        _http = http;
        _ownsHttp = ownsHttp;
        _publishUri = new Uri(root, "/v1/publish");
    }

    /// <summary>Publishes <paramref name="data"/> and returns the ack; see the class summary for retries. A null <paramref name="idempotencyKey"/> gets a generated one (1–56 characters of <c>A-Z a-z 0-9 . _ -</c>).</summary>
    public Task<Ack> PublishAsync(string topic, JsonElement data, string? key = null, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        PublishAsync(HttpPublishItem.Create(topic, data, key), idempotencyKey, cancellationToken);

    /// <summary>Publishes one JSON value given as UTF-8 bytes; see <see cref="PublishAsync(string, JsonElement, string?, string?, CancellationToken)"/>.</summary>
    public Task<Ack> PublishAsync(string topic, ReadOnlyMemory<byte> utf8Json, string? key = null, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        PublishAsync(HttpPublishItem.Create(topic, utf8Json, key), idempotencyKey, cancellationToken);

    /// <summary>Publishes <paramref name="data"/> serialised with <paramref name="typeInfo"/>; see <see cref="PublishAsync(string, JsonElement, string?, string?, CancellationToken)"/>.</summary>
    public Task<Ack> PublishAsync<T>(string topic, T data, JsonTypeInfo<T> typeInfo, string? key = null, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        PublishAsync(HttpPublishItem.Create(topic, data, typeInfo, key), idempotencyKey, cancellationToken);

    private Task<Ack> PublishAsync(HttpPublishItem item, string? idempotencyKey, CancellationToken ct) =>
        PublishOneAsync(Body([item], single: true), IdempotencyKey(idempotencyKey), ct); // arguments checked before any await

    private async Task<Ack> PublishOneAsync(byte[] body, string idempotencyKey, CancellationToken ct)
    {
        var results = await SendAsync(body, idempotencyKey, single: true, ct).ConfigureAwait(false);
        return results[0].Ack ?? throw results[0].Error!;
    }

    /// <summary>
    /// Publishes several messages in one request (at most the broker's <c>broker.http-publish.max-batch</c>)
    /// and returns one result per item, in order. Items refused for a transient reason are retried by
    /// sending the whole batch again with the same key (written items are answered with their original
    /// positions); the results of the last attempt are returned. A refusal of the request as a whole
    /// throws <see cref="BrokerErrorException"/>.
    /// </summary>
    public Task<IReadOnlyList<PublishResult>> PublishBatchAsync(IReadOnlyList<HttpPublishItem> items, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0) throw new ArgumentException("at least one item", nameof(items));
        return SendAsync(Body(items, single: false), IdempotencyKey(idempotencyKey), single: false, cancellationToken);
    }

    private static string IdempotencyKey(string? key)
    {
        if (key is null) return Guid.NewGuid().ToString("N");
        if (!Names.IsValidIdempotencyKey(key)) throw new ArgumentException("an idempotency key is 1-56 characters of A-Z a-z 0-9 . _ -", nameof(key));
        return key;
    }

    private static byte[] Body(IReadOnlyList<HttpPublishItem> items, bool single)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, WriterOptions))
        {
            if (!single) w.WriteStartArray();
            foreach (var item in items)
            {
                w.WriteStartObject();
                w.WriteString("topic"u8, item.Topic);
                if (item.Key is not null) w.WriteString("key"u8, item.Key);
                w.WritePropertyName("data"u8);
                w.WriteRawValue(item.Data.Span, skipInputValidation: true); // validated when the item was made
                w.WriteEndObject();
            }
            if (!single) w.WriteEndArray();
        }
        return stream.ToArray();
    }

    private async Task<IReadOnlyList<PublishResult>> SendAsync(byte[] body, string idempotencyKey, bool single, CancellationToken ct)
    {
        var tokenRenewed = false;
        for (var attempt = 1; ; attempt++)
        {
            TimeSpan? retryAfter = null;
            try
            {
                var (results, status, hint) = await AttemptAsync(body, idempotencyKey, ct).ConfigureAwait(false);
                retryAfter = hint;
                if (status == HttpStatusCode.OK && (single || results.Count > 0))
                {
                    var converted = results.Select(ToResult).ToList();
                    // Items refused for a transient reason: the whole request again (written items dedupe).
                    if (!converted.Any(r => r.Error is { IsTransient: true }) || attempt >= _options.MaxAttempts) return converted;
                }
                else
                {
                    var error = results.Count == 1 && results[0].Type == "error"
                        ? new BrokerErrorException(results[0].Code ?? BrokerErrorCodes.Internal, results[0].Message ?? "", hint, (int)status)
                        : new BrokerErrorException(CodeFor(status), $"HTTP {(int)status} from {_publishUri}", hint, (int)status);
                    if (status == HttpStatusCode.Unauthorized && _options.TokenProvider is not null && !tokenRenewed && attempt < _options.MaxAttempts)
                    {
                        tokenRenewed = true; // the token may have expired in flight: once more, at once, with the provider's next one
                        continue;
                    }
                    if (!Retryable(status, error) || attempt >= _options.MaxAttempts) throw error;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                // No answer (connection refused or broken, attempt timed out): the key makes a retry safe.
                if (attempt >= _options.MaxAttempts) throw new BrokerException($"no answer from {_publishUri} after {attempt} attempts", e);
            }
            var delay = _options.Backoff.DelayFor(attempt, Random.Shared.NextDouble());
            if (retryAfter > delay) delay = retryAfter.Value;
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
    }

    private async Task<(List<ServerFrame> Results, HttpStatusCode Status, TimeSpan? RetryAfter)> AttemptAsync(byte[] body, string idempotencyKey, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.AttemptTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, _publishUri)
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
        if (_options.TokenProvider is { } provider)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await provider(timeout.Token).ConfigureAwait(false));
        using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
        var bytes = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
        var frames = new List<ServerFrame>();
        if (!ServerFrame.TryParse(bytes, frames)) frames.Clear();
        var retryAfter = response.Headers.RetryAfter?.Delta;
        return (frames, response.StatusCode, retryAfter);
    }

    private PublishResult ToResult(ServerFrame f) => f.Type == "ack"
        ? new PublishResult { Ack = new Ack(f.Topic ?? "", f.Pos ?? "") }
        : new PublishResult { Error = new BrokerErrorException(f.Code ?? BrokerErrorCodes.Internal, f.Message ?? Encoding.UTF8.GetString(f.Data.Span), f.RetryAfterMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null, 200) };

    private static bool Retryable(HttpStatusCode status, BrokerErrorException error) =>
        error.IsTransient || status is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout or HttpStatusCode.TooManyRequests;

    private static string CodeFor(HttpStatusCode status) => status switch
    {
        HttpStatusCode.BadRequest => BrokerErrorCodes.BadRequest,
        HttpStatusCode.Unauthorized => BrokerErrorCodes.Unauthorized,
        HttpStatusCode.Forbidden => BrokerErrorCodes.Forbidden,
        HttpStatusCode.NotFound => BrokerErrorCodes.NotFound,
        HttpStatusCode.Conflict => BrokerErrorCodes.Conflict,
        HttpStatusCode.RequestEntityTooLarge => BrokerErrorCodes.TooLarge,
        HttpStatusCode.TooManyRequests => BrokerErrorCodes.RateLimited,
        HttpStatusCode.ServiceUnavailable or HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout => BrokerErrorCodes.Unavailable,
        _ => BrokerErrorCodes.Internal,
    };

    /// <summary>Disposes the HttpClient if this publisher created it.</summary>
    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}
