using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Broker.Client.Internal;

namespace Broker.Client;

/// <summary>
/// A connection to the broker that stays up: it reconnects after every drop (exponential backoff
/// with jitter, to the next of its endpoints) and restores what the application had — subscriptions
/// resume after the last message they buffered, unacknowledged publishes are resent with their ids
/// and written once, a durable session is reattached. Thread-safe.
/// <code>
/// await using var client = await BrokerClient.ConnectAsync(new Uri("ws://127.0.0.1:8080/ws"));
/// await using var chat = await client.SubscribeAsync("chat");
/// var ack = await client.PublishAsync("chat", JsonSerializer.SerializeToElement(new { text = "hi" }));
/// await foreach (var m in chat) Console.WriteLine(m.Data);
/// </code>
/// </summary>
public sealed partial class BrokerClient : IAsyncDisposable
{
    private readonly Uri[] _endpoints;
    private readonly BrokerClientOptions _options;
    /// <summary>Guards the connection, the publishes, the subscriptions and the requests awaiting replies.</summary>
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _connectedOnce = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<BrokerCloseInfo> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PublishQueue _publishes;
    private readonly Dictionary<string, BrokerSubscription> _subscriptions = new(StringComparer.Ordinal);
    /// <summary>Control requests awaiting their reply on the current connection: a subscription (subscribe) or a reply source.</summary>
    private readonly Dictionary<string, object> _requests = new(StringComparer.Ordinal);
    /// <summary>Session topics unsubscribed while no connection could tell the broker: unsubscribed after the next restore.</summary>
    private readonly HashSet<string> _unsubscribeLater = new(StringComparer.Ordinal);
    /// <summary>Request ids are this client's prefix + a counter: unique per identity also across restarts of the process.</summary>
    private readonly string _idPrefix = RandomToken(10);
    private long _nextPublish;
    private long _nextRequest;
    private WebSocketConnection? _connection;
    private Uri _endpoint;
    private BrokerConnectionState _state = BrokerConnectionState.Connecting;
    private BrokerCloseInfo? _closed;
    private bool _disposed;
    private bool _started;
    /// <summary>The current connection's restore is complete (a session's restored subscriptions arrived): subscribes go out directly.</summary>
    private bool _synced;
    private Task _run = Task.CompletedTask;
    private Task _autoCommit = Task.CompletedTask;

    /// <summary>
    /// Creates a client for <paramref name="endpoint"/> (e.g. <c>ws://host:8080/ws</c>) without connecting:
    /// attach event handlers and declare subscriptions with <see cref="Subscribe"/> first, then
    /// <see cref="ConnectAsync(CancellationToken)"/>.
    /// </summary>
    public BrokerClient(Uri endpoint, BrokerClientOptions? options = null)
        : this([endpoint ?? throw new ArgumentNullException(nameof(endpoint))], options)
    {
    }

    /// <summary>
    /// Creates a client for several endpoints (nodes of one cluster, or one address in front of them):
    /// the first connection goes to the first, each reconnect to the next one.
    /// </summary>
    public BrokerClient(IReadOnlyList<Uri> endpoints, BrokerClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.Count == 0) throw new ArgumentException("at least one endpoint", nameof(endpoints));
        foreach (var e in endpoints)
        {
            if (e is null || !e.IsAbsoluteUri || e.Scheme is not ("ws" or "wss"))
                throw new ArgumentException($"endpoints must be absolute ws:// or wss:// URIs: {e}", nameof(endpoints));
        }
        options ??= new BrokerClientOptions();
        options.Validate();
        _endpoints = [.. endpoints];
        _options = options;
        _endpoint = _endpoints[0];
        _publishes = new PublishQueue(options.MaxPendingPublishes);
        ClientId = options.ClientId ?? "c-" + RandomToken(24);
    }

    /// <summary>Creates a client and connects it: <see cref="BrokerClient(Uri, BrokerClientOptions?)"/> and <see cref="ConnectAsync(CancellationToken)"/>.</summary>
    public static Task<BrokerClient> ConnectAsync(Uri endpoint, BrokerClientOptions? options = null, CancellationToken cancellationToken = default) =>
        ConnectAsync([endpoint ?? throw new ArgumentNullException(nameof(endpoint))], options, cancellationToken);

    /// <summary>Creates a client and connects it: <see cref="BrokerClient(IReadOnlyList{Uri}, BrokerClientOptions?)"/> and <see cref="ConnectAsync(CancellationToken)"/>.</summary>
    public static async Task<BrokerClient> ConnectAsync(IReadOnlyList<Uri> endpoints, BrokerClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        var client = new BrokerClient(endpoints, options);
        await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
        return client;
    }

    /// <summary>
    /// Starts the client and completes once it is connected (and authenticated, with a token
    /// provider), retrying with the reconnect policy meanwhile. From then on it reconnects by itself.
    /// Throws <see cref="BrokerClosedException"/> when the broker refuses for good or the policy gives
    /// up; cancelling <paramref name="cancellationToken"/> stops trying and disposes the client.
    /// </summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ThrowIfStopped();
            if (_started) throw new InvalidOperationException("the client is already started");
            _started = true;
        }
        Start();
        try
        {
            await _connectedOnce.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The identity sent as <c>?client=</c> (supplied or generated once for this client).</summary>
    public string ClientId { get; }

    /// <summary>The durable session, if any.</summary>
    public string? Session => _options.Session;

    /// <summary>The connection's state.</summary>
    public BrokerConnectionState State
    {
        get { lock (_gate) return _state; }
    }

    /// <summary>The endpoint of the current (or last) connection.</summary>
    public Uri Endpoint
    {
        get { lock (_gate) return _endpoint; }
    }

    /// <summary>The subject the broker authenticated (<c>authed.sub</c>), with a <see cref="BrokerClientOptions.TokenProvider"/>.</summary>
    public string? Subject { get; private set; }

    /// <summary>Completes when the client stopped for good, with the reason.</summary>
    public Task<BrokerCloseInfo> Completion => _completion.Task;

    /// <summary>Publishes waiting for their ack.</summary>
    public int PendingPublishes
    {
        get { lock (_gate) return _publishes.Count; }
    }

    /// <summary>The subscriptions, including those a durable session restored that the application has not taken yet.</summary>
    public IReadOnlyList<BrokerSubscription> Subscriptions
    {
        get { lock (_gate) return [.. _subscriptions.Values]; }
    }

    /// <summary>
    /// Raised on every change of <see cref="State"/> (on the client's own tasks; keep handlers short).
    /// </summary>
    public event EventHandler<BrokerStateChangedEventArgs>? StateChanged;

    /// <summary>Raised for <c>error</c> frames no awaited request receives (refused commits, a session store that is down).</summary>
    public event EventHandler<BrokerErrorEventArgs>? Error;

    /// <summary>
    /// Raised when the durable session restores a topic the application has not subscribed to in this
    /// process; take it with <see cref="SubscribeAsync"/> (or <see cref="Subscriptions"/>) and read it.
    /// Its messages are buffered meanwhile (and, when the buffer is full, the connection waits).
    /// </summary>
    public event EventHandler<BrokerSubscription>? SubscriptionRestored;

    // ---- publish -----------------------------------------------------------------------------

    /// <summary>
    /// Publishes <paramref name="data"/> and completes with the broker's ack once the message is in
    /// the log. While disconnected the publish waits in a bounded queue; after every reconnect the
    /// unacknowledged publishes are resent with the same ids and written once. Transient refusals
    /// (<c>unavailable</c>, <c>overloaded</c>, <c>rate_limited</c>) are resent with backoff; others
    /// throw <see cref="BrokerErrorException"/>. Cancelling stops waiting and resending (a publish
    /// already sent may still be written). Throws <see cref="PublishQueueFullException"/> at once when
    /// <see cref="BrokerClientOptions.MaxPendingPublishes"/> publishes are waiting.
    /// </summary>
    public Task<Ack> PublishAsync(string topic, JsonElement data, string? key = null, CancellationToken cancellationToken = default) =>
        Enqueue(topic, key, data, static (w, d) => d.WriteTo(w), cancellationToken);

    /// <summary>Publishes one JSON value given as UTF-8 bytes (validated here); see <see cref="PublishAsync(string, JsonElement, string?, CancellationToken)"/>.</summary>
    public Task<Ack> PublishAsync(string topic, ReadOnlyMemory<byte> utf8Json, string? key = null, CancellationToken cancellationToken = default)
    {
        JsonValue.ThrowIfNotOneValue(utf8Json.Span, nameof(utf8Json));
        return Enqueue(topic, key, utf8Json, static (w, d) => w.WriteRawValue(d.Span, skipInputValidation: true), cancellationToken);
    }

    /// <summary>
    /// Publishes <paramref name="data"/> serialised with <paramref name="typeInfo"/> (e.g. from a
    /// source-generated <c>JsonSerializerContext</c>); see <see cref="PublishAsync(string, JsonElement, string?, CancellationToken)"/>.
    /// </summary>
    public Task<Ack> PublishAsync<T>(string topic, T data, JsonTypeInfo<T> typeInfo, string? key = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return Enqueue(topic, key, (data, typeInfo), static (w, s) => JsonSerializer.Serialize(w, s.data, s.typeInfo), cancellationToken);
    }

    private Task<Ack> Enqueue<TState>(string topic, string? key, TState state, Action<Utf8JsonWriter, TState> writeData, CancellationToken ct)
    {
        Names.ThrowIfInvalidTopic(topic);
        if (ct.IsCancellationRequested) return Task.FromCanceled<Ack>(ct);
        var id = $"{_idPrefix}-{Interlocked.Increment(ref _nextPublish)}";
        var frame = RequestFrames.Publish(id, topic, key, state, writeData);
        if (frame.Length > _options.MaxFrameBytes)
        {
            return Task.FromException<Ack>(new BrokerErrorException(BrokerErrorCodes.TooLarge,
                $"the publish is {frame.Length} bytes; frames are limited to {_options.MaxFrameBytes} (BrokerClientOptions.MaxFrameBytes)"));
        }
        var p = new PendingPublish(id, topic, frame);
        lock (_gate)
        {
            ThrowIfStopped();
            _publishes.Add(p);
            if (_connection is { } c && c.Send(frame)) p.SentOn = c.Generation;
        }
        if (ct.CanBeCanceled) p.Cancellation = ct.Register(() => CancelPublish(p, ct));
        return p.Task;
    }

    private void CancelPublish(PendingPublish p, CancellationToken ct)
    {
        lock (_gate) _publishes.Remove(p.Id);
        p.Cancel(ct);
    }

    /// <summary>Waits until every publish made so far is acknowledged or failed.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        Task[] waiting;
        lock (_gate) waiting = [.. _publishes.InOrder.Select(p => (Task)p.Task)];
        try
        {
            await Task.WhenAll(waiting).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Each publish's own task carries its failure.
        }
    }

    // ---- subscribe ---------------------------------------------------------------------------

    /// <summary>
    /// Declares a subscription to <paramref name="topic"/> and returns it at once; it is subscribed as
    /// soon as a connection is up (a durable session may restore it instead). Declare subscriptions
    /// before <see cref="ConnectAsync(CancellationToken)"/> so that a session's restored messages reach
    /// them from the first connection. A topic the session restored earlier is returned as it is (the
    /// session's stored options apply). One subscription per topic: dispose it before subscribing again.
    /// </summary>
    public BrokerSubscription Subscribe(string topic, SubscribeOptions? options = null)
    {
        Names.ThrowIfInvalidTopic(topic);
        options ??= new SubscribeOptions();
        if (options.BufferCapacity is < 1) throw new ArgumentOutOfRangeException(nameof(options), "BufferCapacity must be at least 1");
        if (options.Last is < 0) throw new ArgumentOutOfRangeException(nameof(options), "Last must not be negative");
        lock (_gate)
        {
            ThrowIfStopped();
            if (_subscriptions.TryGetValue(topic, out var existing))
            {
                if (existing is { RestoredBySession: true, Claimed: false })
                {
                    existing.Claimed = true;
                    return existing;
                }
                throw new InvalidOperationException($"already subscribed to {topic}: dispose that subscription first");
            }
            _unsubscribeLater.Remove(topic);
            var sub = new BrokerSubscription(this, topic, options, options.BufferCapacity ?? _options.SubscriptionBufferCapacity, restoredBySession: false)
            {
                Claimed = true,
            };
            _subscriptions[topic] = sub;
            if (_connection is { } c && _synced) SendSubscribe(c, sub);
            return sub;
        }
    }

    /// <summary>
    /// <see cref="Subscribe"/>, then waits until the broker confirmed the subscription. Transient
    /// refusals are retried; others throw <see cref="BrokerErrorException"/> (and the subscription is
    /// dropped). Cancelling unsubscribes.
    /// </summary>
    public async Task<BrokerSubscription> SubscribeAsync(string topic, SubscribeOptions? options = null, CancellationToken cancellationToken = default)
    {
        var sub = Subscribe(topic, options);
        try
        {
            await sub.FirstReply.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await sub.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return sub;
    }

    internal async Task UnsubscribeAsync(BrokerSubscription sub, CancellationToken ct, bool awaitReply)
    {
        TaskCompletionSource<ServerFrame>? reply = null;
        lock (_gate)
        {
            if (sub.Closed) return;
            sub.Closed = true;
            if (_subscriptions.TryGetValue(sub.Topic, out var current) && current == sub) _subscriptions.Remove(sub.Topic);
            // Unblocks a receive loop waiting for room in this subscription's buffer.
            sub.Complete(null);
            if (_closed is not null) return;
            if (_connection is { } c && sub.ActiveOn == c)
                reply = Request(c, "u", id => RequestFrames.Unsubscribe(id, sub.Topic));
            else if (_options.Session is not null)
                _unsubscribeLater.Add(sub.Topic); // the session may hold it: tell the broker once connected
            // Without a session, a subscription not active on this connection does not exist on the broker
            // (one still being subscribed is unsubscribed when its confirmation arrives).
        }
        if (reply is null) return;
        if (!awaitReply)
        {
            _ = reply.Task.ContinueWith(t => OnUnsubscribeLost(t, sub.Topic), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return;
        }
        try
        {
            await reply.Task.WaitAsync(ct).ConfigureAwait(false); // unsubscribed, or not_found: gone either way
        }
        catch (ConnectionLostException)
        {
        }
        finally
        {
            OnUnsubscribeLost(reply.Task, sub.Topic);
        }
    }

    /// <summary>An unsubscribe whose connection ended before the reply: a session may still hold the topic.</summary>
    private void OnUnsubscribeLost(Task<ServerFrame> reply, string topic)
    {
        if (reply.IsFaulted && reply.Exception?.InnerException is ConnectionLostException && _options.Session is not null)
        {
            lock (_gate)
            {
                if (!_subscriptions.ContainsKey(topic)) _unsubscribeLater.Add(topic);
            }
        }
    }

    internal void Commit(BrokerSubscription sub, string pos)
    {
        if (_options.Session is null) throw new InvalidOperationException("commit needs a durable session (BrokerClientOptions.Session)");
        lock (_gate)
        {
            ThrowIfStopped();
            sub.CommittedPos = pos;
            if (_connection is { } c && sub.ActiveOn == c) SendCommit(c, sub.Topic, pos);
        }
    }

    /// <summary>Sends a ping and waits for the pong on the current connection (a round trip; throws when not connected).</summary>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        TaskCompletionSource<ServerFrame> reply;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        lock (_gate)
        {
            ThrowIfStopped();
            if (_connection is not { } c) throw new BrokerException("not connected");
            reply = Request(c, "p", RequestFrames.Ping);
        }
        await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return System.Diagnostics.Stopwatch.GetElapsedTime(started);
    }

    // ---- lifetime ----------------------------------------------------------------------------

    /// <summary>
    /// Commits what auto-commit has pending, closes the connection (1000) and stops reconnecting.
    /// Publishes still waiting fail with <see cref="ObjectDisposedException"/> (await
    /// <see cref="FlushAsync"/> first to wait for them); subscriptions end their enumeration.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        WebSocketConnection? connection;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            connection = _connection;
            if (connection is not null && _options.AutoCommit) CommitProcessed(connection);
            foreach (var sub in _subscriptions.Values)
            {
                sub.FailFirst(new ObjectDisposedException(nameof(BrokerClient)));
                sub.Complete(null); // also unblocks a receive loop waiting for room in its buffer
            }
        }
        if (connection is not null) await connection.CloseAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_run, _autoCommit).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Stopping is best effort from here.
        }
        Stop(new BrokerCloseInfo(BrokerCloseCodes.Normal, "disposed"), null);
    }

    private void ThrowIfStopped()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(BrokerClient));
        if (_closed is { } info) throw new BrokerClosedException(info);
    }

    private static string RandomToken(int length)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        return string.Create(length, 0, static (span, _) =>
        {
            for (var i = 0; i < span.Length; i++) span[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
        });
    }

    private static void Raise<T>(EventHandler<T>? handler, object sender, T args)
    {
        try { handler?.Invoke(sender, args); }
        catch (Exception) { /* an application handler's failure must not break the client */ }
    }
}
