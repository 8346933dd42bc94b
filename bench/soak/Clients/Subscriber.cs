using Broker.Client;

namespace Broker.Soak.Clients;

/// <summary>
/// A subscriber on the client library: plain (every reconnect resumes with <c>since</c>) or a
/// durable session (the broker restores its subscriptions after its last commit; it commits every
/// <see cref="CommitEvery"/> messages). It subscribes every topic from the log's start. A restart
/// (the "subscriber restart" fault) ends the client object, as a process that restarts would, and
/// starts a new one: plain with <c>since</c> = the last message it processed, a session from the
/// commit it made of that message.
/// </summary>
public sealed class Subscriber : IAsyncDisposable
{
    public const int CommitEvery = 20;

    private readonly string _clientId;
    private readonly IReadOnlyList<Uri> _endpoints;
    private readonly Lock _gate = new();
    private readonly List<SubscriberStream> _streams = [];
    private BrokerClient? _client;
    private CancellationTokenSource _reading = new();
    private List<Task> _readers = [];
    private Dictionary<string, SubscriberStream> _current = [];
    private int _incarnation;

    public Subscriber(string name, string clientId, string? session, IReadOnlyList<string> topics, IReadOnlyList<Uri> endpoints)
    {
        Name = name;
        _clientId = clientId;
        Session = session;
        Topics = topics;
        _endpoints = endpoints;
    }

    public string Name { get; }
    public string? Session { get; }
    public IReadOnlyList<string> Topics { get; }
    public ConnectionStats Stats { get; } = new();
    public int Restarts => _incarnation - 1;

    /// <summary>Every stream so far (one per topic per life of the client object).</summary>
    public List<SubscriberStream> Streams
    {
        get { lock (_gate) return [.. _streams]; }
    }

    /// <summary>The streams of the current life.</summary>
    public List<SubscriberStream> Current
    {
        get { lock (_gate) return [.. _current.Values]; }
    }

    /// <summary>Starts the first life: every topic from the log's start; completes once each subscription is confirmed.</summary>
    public Task StartAsync(CancellationToken ct) => StartLifeAsync(Topics.ToDictionary(t => t, _ => (string?)null), strict: true, ct);

    private async Task StartLifeAsync(Dictionary<string, string?> after, bool strict, CancellationToken ct)
    {
        var client = new BrokerClient(_endpoints, new BrokerClientOptions
        {
            ClientId = _clientId,
            Session = Session,
            Reconnect = SoakClients.Reconnect,
            SubscriptionBufferCapacity = 256,
        });
        Stats.Attach(client);
        var number = ++_incarnation;
        var streams = new Dictionary<string, SubscriberStream>();
        var subs = new List<BrokerSubscription>();
        foreach (var topic in Topics)
        {
            var since = after[topic];
            streams[topic] = new SubscriberStream(Name, number, topic, since, strict);
            // A session restores its topics after its last commit (the options apply to a new session only);
            // a plain client resumes after the last message processed, or starts at the log's start.
            subs.Add(client.Subscribe(topic, Session is null && since is not null
                ? new SubscribeOptions { Since = since }
                : new SubscribeOptions { From = StartFrom.Earliest }));
        }
        var reading = new CancellationTokenSource();
        lock (_gate)
        {
            _client = client;
            _current = streams;
            _reading = reading;
            _streams.AddRange(streams.Values);
            _readers = [.. subs.Select(s => ReadAsync(s, streams[s.Topic], reading.Token))];
        }
        await client.ConnectAsync(ct);
        foreach (var s in subs) await s.WaitConfirmedAsync(ct);
    }

    private async Task ReadAsync(BrokerSubscription sub, SubscriberStream stream, CancellationToken ct)
    {
        var n = 0;
        try
        {
            await foreach (var m in sub.WithCancellation(ct))
            {
                if (!Payload.TryDecode(m.RawData.Span, out var id)) id = new MsgId("?", -1);
                stream.Add(id, m.Pos, m.AfterGap);
                if (Session is not null && ++n % CommitEvery == 0) await sub.CommitAsync(m);
            }
        }
        catch (OperationCanceledException)
        {
            // this life ends
        }
        catch (BrokerException e)
        {
            Clock.Log($"{Name}: subscription to {stream.Topic} ended: {e.Message}");
        }
    }

    /// <summary>
    /// Ends this life as a process that stops would (after committing what it processed, with a
    /// session) and starts the next one where the application says it stopped.
    /// </summary>
    /// <summary>The broker's request-timeout (its default) and a margin: a commit not refused by then is stored.</summary>
    private static readonly TimeSpan CommitRefusalWithin = TimeSpan.FromSeconds(11);

    public async Task<string> RestartAsync(CancellationToken ct)
    {
        BrokerClient client;
        Dictionary<string, SubscriberStream> streams;
        lock (_gate)
        {
            client = _client!;
            streams = _current;
            _reading.Cancel();
        }
        await Task.WhenAll(_readers);
        var after = streams.ToDictionary(kv => kv.Key, kv => kv.Value.LastPos ?? kv.Value.StartAfter);
        var strict = true;
        // What arrives from now on is not processed, but it must be read: a full subscription buffer
        // stops the client's reading, and the ping below would never get its answer.
        using var discard = new CancellationTokenSource();
        var discarding = client.Subscriptions.Select(s => DiscardAsync(s, discard.Token)).ToList();
        if (Session is not null)
        {
            // A commit has no reply unless it is refused, within the broker's request-timeout (10 s:
            // e.g. `unavailable` while the log stalls, since a commit checks the topic's head). One
            // sent on a connection where the subscription is active and not refused within that time
            // is stored. Without that, or with a refusal, the restored position may lie before it
            // (then not strict).
            var refused = false;
            void OnError(object? _, BrokerErrorEventArgs e) => refused = true;
            client.Error += OnError;
            try
            {
                using var t = CancellationTokenSource.CreateLinkedTokenSource(ct);
                t.CancelAfter(TimeSpan.FromSeconds(15));
                while (client.State != BrokerConnectionState.Connected) await Task.Delay(100, t.Token);
                await Task.Delay(500, t.Token); // a reconnected session restores its subscriptions first
                foreach (var sub in client.Subscriptions)
                {
                    if (after.GetValueOrDefault(sub.Topic) is { } pos) await sub.CommitAsync(pos);
                }
                await client.PingAsync(t.Token);
                await Task.Delay(CommitRefusalWithin, ct);
                if (Volatile.Read(ref refused)) strict = false;
            }
            catch (Exception e) when (e is BrokerException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                strict = false;
                foreach (var sub in client.Subscriptions)
                {
                    if (after.GetValueOrDefault(sub.Topic) is { } pos) await sub.CommitAsync(pos);
                }
            }
        }
        await client.DisposeAsync();
        discard.Cancel();
        await Task.WhenAll(discarding);
        await StartLifeAsync(after, strict, ct);
        return Session is null ? "plain: resumed with since" : strict ? "session: resumed after its last commit" : "session: commit unconfirmed";
    }

    private static async Task DiscardAsync(BrokerSubscription sub, CancellationToken ct)
    {
        try
        {
            await foreach (var _ in sub.WithCancellation(ct))
            {
            }
        }
        catch (Exception e) when (e is OperationCanceledException or BrokerException)
        {
            // the life is over
        }
    }

    /// <summary>True when the current life delivered each topic's last records (<paramref name="lastRecords"/> per topic).</summary>
    public bool CaughtUp(IReadOnlyDictionary<string, List<MsgId>> lastRecords) =>
        Current.All(s => !lastRecords.TryGetValue(s.Topic, out var last) || s.HasAll(last));

    /// <summary>Marks the current life as lasting to the end of the run and stops it.</summary>
    public async ValueTask DisposeAsync()
    {
        BrokerClient? client;
        lock (_gate)
        {
            foreach (var s in _current.Values) s.Complete = true;
            client = _client;
            _reading.Cancel();
        }
        await Task.WhenAll(_readers);
        if (client is not null) await client.DisposeAsync();
    }
}

internal static class SubscriptionWaits
{
    /// <summary>Waits until the broker confirmed the subscription (or the session restored it).</summary>
    public static async Task WaitConfirmedAsync(this BrokerSubscription sub, CancellationToken ct)
    {
        var confirmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sub.Resumed += (_, _) => confirmed.TrySetResult();
        if (sub.Head is not null) return;
        await confirmed.Task.WaitAsync(ct);
    }
}
