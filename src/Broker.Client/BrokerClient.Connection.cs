using Broker.Client.Internal;

namespace Broker.Client;

/// <summary>The connection side of <see cref="BrokerClient"/>: the reconnect loop, the handshake and the dispatch of server frames.</summary>
public sealed partial class BrokerClient
{
    private void Start()
    {
        _run = Task.Run(RunAsync);
        if (_options.AutoCommit) _autoCommit = Task.Run(AutoCommitAsync);
    }

    /// <summary>
    /// Connects, serves the connection until it ends, and reconnects — to the next endpoint, after
    /// the backoff — until the client is disposed or the broker closes in a way that forbids retrying.
    /// </summary>
    private async Task RunAsync()
    {
        var failures = 0;
        for (var attempt = 0; ; attempt++)
        {
            var endpoint = _endpoints[attempt % _endpoints.Length];
            lock (_gate)
            {
                if (_disposed) return;
                _endpoint = endpoint;
                _state = BrokerConnectionState.Connecting;
            }
            Raise(StateChanged, this, new BrokerStateChangedEventArgs(BrokerConnectionState.Connecting, endpoint, failures + 1, null, null, null));

            WebSocketConnection? connection = null;
            var connected = false;
            BrokerCloseInfo info;
            Exception? error = null;
            var terminal = false;
            TimeSpan? retryAfter = null;
            try
            {
                connection = await WebSocketConnection.ConnectAsync(ConnectionUri(endpoint), endpoint, _options, _stop.Token).ConfigureAwait(false);
                connection.Start(OnFrameAsync);
                await HandshakeAsync(connection).ConfigureAwait(false);
                connected = OnConnected(connection);
                if (connected) failures = 0;
                else connection.Abort(); // disposed meanwhile
                info = await connection.Ended.ConfigureAwait(false);
            }
            catch (ConnectFailedException e)
            {
                (info, terminal, retryAfter, error) = (e.Info, e.Terminal, e.RetryAfter, e.InnerException ?? e);
            }
            catch (HandshakeRefusedException e)
            {
                connection?.Abort();
                (info, terminal, error) = (e.Info, true, e);
            }
            catch (Exception e) when (!_stop.IsCancellationRequested || connection is not null)
            {
                // The handshake failed: timed out, or the connection ended first (its close says why).
                connection?.Abort();
                info = connection is null ? new BrokerCloseInfo(null, e.Message) : await connection.Ended.ConfigureAwait(false);
                error = e;
            }
            catch (OperationCanceledException)
            {
                return; // disposed while connecting
            }
            finally
            {
                if (connection is not null) OnDisconnected(connection);
            }

            if (!connected) failures++;
            if (_disposed || _stop.IsCancellationRequested) return;
            if (!terminal && info.CloseCode is { } code) terminal = !ShouldReconnect(code, info.Reason, _options.TokenProvider is not null);
            if (!terminal && _options.Reconnect.MaxAttempts is { } max && failures >= max)
            {
                info = info with { Reason = $"gave up after {failures} failed attempts; the last: {info}" };
                terminal = true;
            }
            if (terminal)
            {
                Stop(info, error);
                return;
            }
            var delay = _options.Reconnect.DelayFor(failures + 1, Random.Shared.NextDouble());
            if (retryAfter > delay) delay = retryAfter.Value;
            lock (_gate)
            {
                if (_disposed) return;
                _state = BrokerConnectionState.Disconnected;
            }
            Raise(StateChanged, this, new BrokerStateChangedEventArgs(BrokerConnectionState.Disconnected, endpoint, failures, info, error, delay));
            try
            {
                await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Whether a connection closed with <paramref name="code"/> is worth reconnecting: yes for a node
    /// going away (1001), a dropped connection (1006), a failed send (1011), a slow consumer (1013) and
    /// anything unknown; no for refused auth or a taken-over session (1008, except an expired token when a
    /// provider can supply a fresh one), a frame too big (1009) and protocol errors (1002, 1003, 1007).
    /// </summary>
    internal static bool ShouldReconnect(int code, string reason, bool hasTokenProvider) => code switch
    {
        BrokerCloseCodes.PolicyViolation => hasTokenProvider && reason == "token_expired",
        BrokerCloseCodes.TooBig or 1002 or 1003 or 1007 => false,
        _ => true,
    };

    private Uri ConnectionUri(Uri endpoint)
    {
        var query = endpoint.Query.TrimStart('?');
        var parts = new List<string>();
        if (query.Length > 0) parts.Add(query);
        parts.Add("client=" + Uri.EscapeDataString(ClientId));
        if (_options.Session is { } session) parts.Add("session=" + Uri.EscapeDataString(session));
        if (_options.Batch) parts.Add("batch=1");
        return new UriBuilder(endpoint) { Query = string.Join('&', parts) }.Uri;
    }

    /// <summary>A refusal during the handshake that retrying cannot fix (the token was refused).</summary>
    private sealed class HandshakeRefusedException(BrokerCloseInfo info) : BrokerException(info.ToString())
    {
        public BrokerCloseInfo Info { get; } = info;
    }

    /// <summary>Before the connection counts as up: the auth frame first (with a token provider), answered <c>authed</c>.</summary>
    private async Task HandshakeAsync(WebSocketConnection connection)
    {
        if (_options.TokenProvider is not { } provider) return;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_options.ConnectTimeout);
        var token = await provider(timeout.Token).ConfigureAwait(false);
        TaskCompletionSource<ServerFrame> auth;
        lock (_gate) auth = Request(connection, "a", id => RequestFrames.Auth(id, token));
        var reply = await auth.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
        if (reply.Type == "error")
        {
            // unauthorized: the broker closes with 1008 next. Anything else (a broker without auth answers
            // bad_request to the unknown frame) is no reason to retry either, but is not a 1008.
            var code = reply.Code == BrokerErrorCodes.Unauthorized ? BrokerCloseCodes.PolicyViolation : (int?)null;
            throw new HandshakeRefusedException(new BrokerCloseInfo(code, $"the broker refused the auth frame: {reply.Code}: {reply.Message}"));
        }
        Subject = reply.Sub;
    }

    /// <summary>
    /// The connection is up: every unacknowledged publish is resent in order. Subscriptions follow once
    /// the connection is synced: at once without a session; with one, after a ping whose pong comes
    /// after every subscription the session restored (they are not subscribed twice). The pong is not
    /// awaited here: restored messages may have to wait for the application to read them first.
    /// False when the client was disposed meanwhile.
    /// </summary>
    private bool OnConnected(WebSocketConnection c)
    {
        lock (_gate)
        {
            if (_disposed) return false;
            _connection = c;
            _synced = false;
            _state = BrokerConnectionState.Connected;
            foreach (var p in _publishes.InOrder)
            {
                if (c.Send(p.Frame)) p.SentOn = c.Generation;
            }
            if (_options.Session is null)
            {
                Synced(c);
            }
            else
            {
                var sync = Request(c, "p", RequestFrames.Ping);
                _ = sync.Task.ContinueWith(t =>
                {
                    if (t.IsCompletedSuccessfully) lock (_gate) Synced(c);
                }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        _connectedOnce.TrySetResult();
        Raise(StateChanged, this, new BrokerStateChangedEventArgs(BrokerConnectionState.Connected, c.Endpoint, 1, null, null, null));
        return true;
    }

    /// <summary>
    /// (Under the lock.) The session, if any, restored what it holds: subscribe what it did not
    /// restore (each after what it buffered) and unsubscribe what the application dropped meanwhile.
    /// </summary>
    private void Synced(WebSocketConnection c)
    {
        if (_connection != c || _synced) return;
        _synced = true;
        foreach (var sub in _subscriptions.Values)
        {
            if (sub.ActiveOn != c) SendSubscribe(c, sub);
        }
        foreach (var topic in _unsubscribeLater)
        {
            var reply = Request(c, "u", id => RequestFrames.Unsubscribe(id, topic));
            _ = reply.Task.ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully) lock (_gate) _unsubscribeLater.Remove(topic);
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>The connection ended: requests awaiting replies on it fail; subscriptions wait for the next connection.</summary>
    private void OnDisconnected(WebSocketConnection c)
    {
        List<TaskCompletionSource<ServerFrame>> lost = [];
        lock (_gate)
        {
            if (_connection == c)
            {
                _connection = null;
                _synced = false;
            }
            foreach (var pending in _requests.Values)
            {
                if (pending is TaskCompletionSource<ServerFrame> tcs) lost.Add(tcs);
            }
            _requests.Clear();
            foreach (var sub in _subscriptions.Values)
            {
                if (sub.ActiveOn == c) sub.ActiveOn = null;
            }
        }
        foreach (var tcs in lost) tcs.TrySetException(new ConnectionLostException());
    }

    /// <summary>The client stops for good: everything waiting fails with why (disposed: <see cref="ObjectDisposedException"/>).</summary>
    private void Stop(BrokerCloseInfo info, Exception? cause)
    {
        List<PendingPublish> publishes;
        List<BrokerSubscription> subs;
        List<TaskCompletionSource<ServerFrame>> requests = [];
        bool disposed;
        lock (_gate)
        {
            if (_closed is not null) return;
            _closed = info;
            _state = BrokerConnectionState.Closed;
            disposed = _disposed;
            publishes = _publishes.TakeAll();
            subs = [.. _subscriptions.Values];
            _subscriptions.Clear();
            foreach (var pending in _requests.Values)
            {
                if (pending is TaskCompletionSource<ServerFrame> tcs) requests.Add(tcs);
            }
            _requests.Clear();
        }
        var closed = new BrokerClosedException(info, cause);
        Exception failure = disposed ? new ObjectDisposedException(nameof(BrokerClient)) : closed;
        foreach (var p in publishes) p.Fail(failure);
        foreach (var r in requests) r.TrySetException(failure);
        foreach (var s in subs)
        {
            s.FailFirst(failure);
            s.Complete(disposed ? null : closed);
        }
        _connectedOnce.TrySetException(failure);
        _completion.TrySetResult(info);
        Raise(StateChanged, this, new BrokerStateChangedEventArgs(BrokerConnectionState.Closed, _endpoint, 0, info, cause, null));
    }

    // ---- requests (under _gate) ----------------------------------------------------------------

    private string NextRequestId(string kind) => $"{kind}{Interlocked.Increment(ref _nextRequest)}";

    /// <summary>Sends a control request whose reply completes the returned source (failed when the connection ends first).</summary>
    private TaskCompletionSource<ServerFrame> Request(WebSocketConnection c, string kind, Func<string, byte[]> frame)
    {
        var id = NextRequestId(kind);
        var reply = new TaskCompletionSource<ServerFrame>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests[id] = reply;
        if (!c.Send(frame(id)))
        {
            _requests.Remove(id);
            reply.TrySetException(new ConnectionLostException());
        }
        return reply;
    }

    private void SendSubscribe(WebSocketConnection c, BrokerSubscription sub)
    {
        var id = NextRequestId("s");
        _requests[id] = sub;
        c.Send(RequestFrames.Subscribe(id, sub.Topic, sub.Options, sub.ResumeSince()));
    }

    private void SendCommit(WebSocketConnection c, string topic, string pos) =>
        c.Send(RequestFrames.Commit(NextRequestId("m"), topic, pos));

    /// <summary>Auto-commit: commits each subscription's processed position when it moved.</summary>
    private void CommitProcessed(WebSocketConnection c)
    {
        foreach (var sub in _subscriptions.Values)
        {
            if (sub.ProcessedPos is not { } processed || processed == sub.CommittedPos) continue;
            sub.CommittedPos = processed;
            if (sub.ActiveOn == c) SendCommit(c, sub.Topic, processed);
        }
    }

    private async Task AutoCommitAsync()
    {
        using var timer = new PeriodicTimer(_options.AutoCommitInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                lock (_gate)
                {
                    if (_connection is { } c) CommitProcessed(c);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    // ---- frames from the broker --------------------------------------------------------------

    private ValueTask OnFrameAsync(WebSocketConnection c, ServerFrame f)
    {
        switch (f.Type)
        {
            case "message":
                return OnMessageAsync(c, f);
            case "ack":
                OnAck(f);
                break;
            case "subscribed":
                OnSubscribed(c, f);
                break;
            case "error":
                OnError(c, f);
                break;
            case "token_expiring":
                _ = RefreshTokenAsync(c);
                break;
            case "unsubscribed" or "pong" or "authed":
                OnReply(f);
                break;
            // Unknown types are ignored: newer brokers may send more.
        }
        return ValueTask.CompletedTask;
    }

    private ValueTask OnMessageAsync(WebSocketConnection c, ServerFrame f)
    {
        BrokerSubscription? sub;
        lock (_gate)
        {
            if (f.Topic is null || !_subscriptions.TryGetValue(f.Topic, out sub) || sub.ActiveOn != c) return ValueTask.CompletedTask;
        }
        return sub.DeliverAsync(f, _stop.Token);
    }

    private void OnAck(ServerFrame f)
    {
        if (f.Id is null) return;
        PendingPublish? p;
        lock (_gate) p = _publishes.Remove(f.Id);
        p?.Complete(new Ack(f.Topic ?? p.Topic, f.Pos ?? ""));
    }

    private void OnReply(ServerFrame f)
    {
        if (f.Id is null) return;
        object? pending;
        lock (_gate) _requests.Remove(f.Id, out pending);
        (pending as TaskCompletionSource<ServerFrame>)?.TrySetResult(f);
    }

    private void OnSubscribed(WebSocketConnection c, ServerFrame f)
    {
        if (f.Topic is null) return;
        BrokerSubscription? sub = null;
        SubscriptionResumedEventArgs? resumed = null;
        var restoredNew = false;
        lock (_gate)
        {
            if (f.Id is not null)
            {
                if (!_requests.Remove(f.Id, out var pending) || pending is not BrokerSubscription s) return;
                sub = s;
                if (sub.Closed)
                {
                    // Unsubscribed while the subscribe was on its way: undo it on the broker.
                    Request(c, "u", id => RequestFrames.Unsubscribe(id, f.Topic));
                    return;
                }
            }
            else
            {
                // Restored by the durable session (no id), before any reply of this connection.
                if (_unsubscribeLater.Contains(f.Topic)) return;
                if (!_subscriptions.TryGetValue(f.Topic, out sub))
                {
                    sub = new BrokerSubscription(this, f.Topic, new SubscribeOptions(), _options.SubscriptionBufferCapacity, restoredBySession: true);
                    _subscriptions[f.Topic] = sub;
                    restoredNew = true;
                }
            }
            resumed = sub.OnSubscribed(c, f.Pos ?? "", f.Recovered, restored: f.Id is null);
            if (sub.CommittedPos is { } committed) SendCommit(c, sub.Topic, committed); // a commit has no reply: make sure it arrived
        }
        if (resumed is not null) sub.RaiseResumed(resumed);
        if (restoredNew) Raise(SubscriptionRestored, this, sub);
    }

    private void OnError(WebSocketConnection c, ServerFrame f)
    {
        var error = f.ToError();
        if (f.Id is null)
        {
            Raise(Error, this, new BrokerErrorEventArgs(error, null));
            return;
        }
        PendingPublish? failed = null;
        BrokerSubscription? refused = null;
        var firstRefusal = false;
        TaskCompletionSource<ServerFrame>? reply = null;
        lock (_gate)
        {
            if (_publishes.TryGet(f.Id, out var p))
            {
                if (error.IsTransient)
                {
                    p.Refusals++;
                    ScheduleResend(p, c.Generation, RetryDelay(p.Refusals, error));
                }
                else
                {
                    failed = _publishes.Remove(f.Id);
                }
            }
            else if (_requests.Remove(f.Id, out var pending))
            {
                if (pending is BrokerSubscription sub && !sub.Closed)
                {
                    if (error.IsTransient)
                    {
                        sub.Refusals++;
                        ScheduleResubscribe(sub, c, RetryDelay(sub.Refusals, error));
                    }
                    else
                    {
                        refused = sub;
                        firstRefusal = !sub.FirstReply.IsCompleted;
                        sub.Closed = true;
                        _subscriptions.Remove(sub.Topic);
                    }
                }
                reply = pending as TaskCompletionSource<ServerFrame>;
            }
        }
        failed?.Fail(error);
        reply?.TrySetResult(f);
        if (refused is not null)
        {
            refused.FailFirst(error);
            if (!firstRefusal) refused.Complete(error);
        }
        if (failed is null && reply is null && refused is null && !IsPending(f.Id))
            Raise(Error, this, new BrokerErrorEventArgs(error, f.Id)); // e.g. a refused commit
    }

    private bool IsPending(string id)
    {
        lock (_gate) return _publishes.TryGet(id, out _);
    }

    private TimeSpan RetryDelay(int refusals, BrokerErrorException error)
    {
        var delay = _options.Reconnect.DelayFor(refusals, Random.Shared.NextDouble());
        return error.RetryAfter > delay ? error.RetryAfter.Value : delay;
    }

    /// <summary>Resends a refused publish after <paramref name="delay"/>, unless a reconnect resent it meanwhile.</summary>
    private void ScheduleResend(PendingPublish p, long generation, TimeSpan delay) =>
        _ = Task.Delay(delay, _stop.Token).ContinueWith(t =>
        {
            if (t.IsCanceled) return;
            lock (_gate)
            {
                if (!_publishes.TryGet(p.Id, out _) || _connection is not { } c || c.Generation != generation || p.SentOn != generation) return;
                c.Send(p.Frame);
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Subscribes again after <paramref name="delay"/> on the same connection (a reconnect resubscribes anyway).</summary>
    private void ScheduleResubscribe(BrokerSubscription sub, WebSocketConnection on, TimeSpan delay) =>
        _ = Task.Delay(delay, _stop.Token).ContinueWith(t =>
        {
            if (t.IsCanceled) return;
            lock (_gate)
            {
                if (sub.Closed || _connection != on || sub.ActiveOn == on) return;
                SendSubscribe(on, sub);
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>The broker announced that the token expires soon: a fresh one replaces it on this connection.</summary>
    private async Task RefreshTokenAsync(WebSocketConnection c)
    {
        if (_options.TokenProvider is not { } provider) return;
        try
        {
            var token = await provider(_stop.Token).ConfigureAwait(false);
            TaskCompletionSource<ServerFrame> reply;
            lock (_gate) reply = Request(c, "a", id => RequestFrames.Auth(id, token));
            var answer = await reply.Task.ConfigureAwait(false);
            if (answer.Type == "error") Raise(Error, this, new BrokerErrorEventArgs(answer.ToError(), answer.Id));
            else Subject = answer.Sub;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The connection ended or the provider failed: the broker closes with 1008 token_expired and
            // the client reconnects with a token from the provider.
            Raise(Error, this, new BrokerErrorEventArgs(new BrokerErrorException(BrokerErrorCodes.Unauthorized, "token refresh failed: " + e.Message), null));
        }
        catch (OperationCanceledException)
        {
        }
    }
}
