using Broker.Client;

namespace Broker.Soak.Clients;

/// <summary>
/// What one subscriber received on one topic during one life of its client object, and where that
/// life had to start: the checker requires every record of the log from <see cref="StartAfter"/>
/// on (to the end of the log when <see cref="Complete"/>, else to the last one delivered), each
/// once, in the log's order per partition.
/// </summary>
public sealed class Stream(string subscriber, int incarnation, string topic, string? startAfter, bool strictStart)
{
    private readonly List<MsgId> _delivered = [];

    public string Subscriber { get; } = subscriber;
    public int Incarnation { get; } = incarnation;
    public string Topic { get; } = topic;

    /// <summary>The position this life resumed after (a <c>pos</c>: <c>since</c> or the session's last commit); null: the log's start.</summary>
    public string? StartAfter { get; } = startAfter;

    /// <summary>
    /// True when nothing at or before <see cref="StartAfter"/> may be delivered again (a <c>since</c>
    /// resume, or a session whose last commit is known to have reached the broker).
    /// </summary>
    public bool StrictStart { get; } = strictStart;

    /// <summary>True for a life that lasted to the end of the run: it must have everything up to the log's end.</summary>
    public bool Complete { get; set; }

    /// <summary>Messages marked as the first after a gap the broker reported (recovered: false).</summary>
    public int Gaps { get; private set; }

    public string? LastPos { get; private set; }

    public void Add(MsgId id, string pos, bool afterGap)
    {
        lock (_delivered)
        {
            _delivered.Add(id);
            LastPos = pos;
            if (afterGap) Gaps++;
        }
    }

    /// <summary>The broker said it could not resume without loss (recovered: false).</summary>
    public void MarkGap()
    {
        lock (_delivered) Gaps++;
    }

    public List<MsgId> Delivered
    {
        get { lock (_delivered) return [.. _delivered]; }
    }

    public int Count
    {
        get { lock (_delivered) return _delivered.Count; }
    }

    /// <summary>Whether each of <paramref name="ids"/> was delivered (searched from the end: they are the log's last records).</summary>
    public bool HasAll(IReadOnlyCollection<MsgId> ids)
    {
        lock (_delivered)
        {
            var missing = new HashSet<MsgId>(ids);
            for (var i = _delivered.Count - 1; i >= 0 && missing.Count > 0; i--) missing.Remove(_delivered[i]);
            return missing.Count == 0;
        }
    }
}

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
    private readonly List<Stream> _streams = [];
    private BrokerClient? _client;
    private CancellationTokenSource _reading = new();
    private List<Task> _readers = [];
    private Dictionary<string, Stream> _current = [];
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
    public List<Stream> Streams
    {
        get { lock (_gate) return [.. _streams]; }
    }

    /// <summary>The streams of the current life.</summary>
    public List<Stream> Current
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
        var streams = new Dictionary<string, Stream>();
        var subs = new List<BrokerSubscription>();
        foreach (var topic in Topics)
        {
            var since = after[topic];
            streams[topic] = new Stream(Name, number, topic, since, strict);
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

    private async Task ReadAsync(BrokerSubscription sub, Stream stream, CancellationToken ct)
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
    public async Task<string> RestartAsync(CancellationToken ct)
    {
        BrokerClient client;
        Dictionary<string, Stream> streams;
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
            // A commit has no reply; one sent on a connection where the subscription is active,
            // followed by a ping answered on that connection, is as good as stored. Without that
            // answer the restored position may lie before it (then not strict).
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
                await Task.Delay(500, t.Token);
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
