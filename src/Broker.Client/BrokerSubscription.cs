using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Broker.Client.Internal;

namespace Broker.Client;

/// <summary>
/// A subscription to one topic: enumerate it (<c>await foreach</c>, one reader) to receive its
/// messages in order. Across reconnects the client resubscribes with <c>since</c> = the last
/// position it buffered, so each message is enumerated once and none is skipped; when the broker
/// could not resume without loss (<c>recovered: false</c>) the next message has
/// <see cref="BrokerMessage.AfterGap"/> set and <see cref="Resumed"/> says so. Dispose it to
/// unsubscribe. The enumeration ends when the subscription or the client is disposed, and throws
/// when the client stops for good (<see cref="BrokerClosedException"/>) or the broker refuses the
/// subscription after a reconnect (<see cref="BrokerErrorException"/>).
/// </summary>
public sealed class BrokerSubscription : IAsyncEnumerable<BrokerMessage>, IAsyncDisposable
{
    private readonly BrokerClient _client;
    private readonly Channel<BrokerMessage> _buffer;
    private readonly TaskCompletionSource _firstReply = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile string? _lastPos;
    private volatile string? _processedPos;

    internal BrokerSubscription(BrokerClient client, string topic, SubscribeOptions options, int capacity, bool restoredBySession)
    {
        _client = client;
        Topic = topic;
        Options = options;
        RestoredBySession = restoredBySession;
        _buffer = Channel.CreateBounded<BrokerMessage>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = true, // the receive loop of the current connection
            FullMode = BoundedChannelFullMode.Wait,
        });
        // Nobody awaits the first reply of a subscription the session restored: observe its failure.
        _ = _firstReply.Task.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>The topic.</summary>
    public string Topic { get; }

    /// <summary>The options it was subscribed with (for a subscription the session restored, the defaults: the session's stored options apply).</summary>
    public SubscribeOptions Options { get; }

    /// <summary>True when the durable session restored this subscription from an earlier connection or process.</summary>
    public bool RestoredBySession { get; }

    /// <summary>The topic's head position at the first <c>subscribed</c>.</summary>
    public string? Head { get; private set; }

    /// <summary>The position of the last message buffered for the application: where a resume starts.</summary>
    public string? LastPos => _lastPos;

    /// <summary>The <c>recovered</c> flag of the latest (re)subscribe (null when it started without a position).</summary>
    public bool? Recovered { get; private set; }

    /// <summary>
    /// Raised on the client's receive loop after every (re)subscribe: the first one, each reconnect,
    /// each session restore. Keep handlers short: the connection waits for them.
    /// </summary>
    public event EventHandler<SubscriptionResumedEventArgs>? Resumed;

    /// <summary>Enumerates the messages; one enumeration at a time.</summary>
    public IAsyncEnumerator<BrokerMessage> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
        Read(cancellationToken).GetAsyncEnumerator(cancellationToken);

    private async IAsyncEnumerable<BrokerMessage> Read([EnumeratorCancellation] CancellationToken ct)
    {
        while (await _buffer.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (_buffer.Reader.TryRead(out var message))
            {
                yield return message;
                // The application asked for the next message: this one is processed (auto-commit).
                _processedPos = message.Pos;
            }
        }
    }

    /// <summary>
    /// Durable sessions: records that everything up to <paramref name="pos"/> is processed. The commit
    /// is sent now when connected, else after the reconnect; the broker does not answer a commit it
    /// stored, and one it refuses is reported by <see cref="BrokerClient.Error"/>.
    /// </summary>
    public ValueTask CommitAsync(string pos)
    {
        ArgumentException.ThrowIfNullOrEmpty(pos);
        _client.Commit(this, pos);
        return ValueTask.CompletedTask;
    }

    /// <summary>Commits the position of <paramref name="message"/> (see <see cref="CommitAsync(string)"/>).</summary>
    public ValueTask CommitAsync(BrokerMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return CommitAsync(message.Pos);
    }

    /// <summary>
    /// Unsubscribes and waits for the broker's reply (while connected): nothing more is buffered;
    /// messages already buffered can still be enumerated, then the enumeration ends. With a session
    /// the broker forgets the topic (after the next reconnect when it cannot be told now).
    /// </summary>
    public Task UnsubscribeAsync(CancellationToken cancellationToken = default) => _client.UnsubscribeAsync(this, cancellationToken, awaitReply: true);

    /// <summary>Unsubscribes like <see cref="UnsubscribeAsync"/>, without waiting for the broker's reply.</summary>
    public ValueTask DisposeAsync()
    {
        _ = _client.UnsubscribeAsync(this, CancellationToken.None, awaitReply: false);
        return ValueTask.CompletedTask;
    }

    // ---- state owned by the client (read and written under its lock or on its receive loop) ----

    internal Task FirstReply => _firstReply.Task;

    /// <summary>The connection on which the broker confirmed this subscription (messages from others are not its).</summary>
    internal object? ActiveOn { get; set; }

    /// <summary>Claimed by the application (SubscribeAsync); a restored subscription is unclaimed until then.</summary>
    internal bool Claimed { get; set; }

    internal bool Closed { get; set; }

    /// <summary>Transient refusals of resubscribes in a row.</summary>
    internal int Refusals { get; set; }

    /// <summary>The position last committed (sent again on each connection: a commit has no reply).</summary>
    internal string? CommittedPos { get; set; }

    internal string? ProcessedPos => _processedPos;

    /// <summary>Messages at or before this position were delivered already (set when a session restores from an older commit).</summary>
    private string? _skipThrough;
    private bool _gapPending;

    /// <summary>Where the next subscribe starts: after what was buffered; else as first asked (with the first head for "latest").</summary>
    internal string? ResumeSince()
    {
        if (_lastPos is { } last) return last;
        if (Options.Since is { } since) return since;
        if (Head is { } head && Options.Last is null && Options.From == StartFrom.Latest) return head;
        return null;
    }

    /// <summary>The broker (re)subscribed on <paramref name="connection"/>. Returns the event to raise outside the client's lock.</summary>
    internal SubscriptionResumedEventArgs? OnSubscribed(object connection, string head, bool? recovered, bool restored)
    {
        // The reply to a subscribe the session had already restored on this connection (it restores
        // before a subscribe when its first restore failed): the restored state stands.
        if (!restored && ReferenceEquals(ActiveOn, connection)) return null;
        var first = Head is null;
        Head ??= head;
        ActiveOn = connection;
        Recovered = recovered;
        Refusals = 0;
        if (recovered == false) _gapPending = true;
        // A session resumes from its last commit, which may lie before what this process delivered already.
        _skipThrough = restored && recovered != false ? _lastPos : null;
        return new SubscriptionResumedEventArgs(head, recovered, restored, first);
    }

    internal void RaiseResumed(SubscriptionResumedEventArgs e)
    {
        _firstReply.TrySetResult();
        try { Resumed?.Invoke(this, e); }
        catch (Exception) { /* an application handler's failure must not break the connection */ }
    }

    internal void FailFirst(Exception e) => _firstReply.TrySetException(e);

    /// <summary>Buffers a message for the application, waiting for room (the connection's reading waits with it).</summary>
    internal async ValueTask DeliverAsync(ServerFrame f, CancellationToken ct)
    {
        if (f.Pos is null) return;
        if (_skipThrough is { } through && Positions.AtOrBefore(f.Pos, through)) return;
        var message = new BrokerMessage(Topic, f.Pos, f.Ts, f.Data, f.Key, f.Base64, f.Headers, f.HeadersBase64, _gapPending);
        try
        {
            if (!_buffer.Writer.TryWrite(message)) await _buffer.Writer.WriteAsync(message, ct).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return; // unsubscribed meanwhile
        }
        _gapPending = false;
        _lastPos = f.Pos;
    }

    /// <summary>Ends the enumeration after what is buffered (null), or with <paramref name="error"/>.</summary>
    internal void Complete(Exception? error)
    {
        _buffer.Writer.TryComplete(error);
        if (error is not null) _firstReply.TrySetException(error);
        else _firstReply.TrySetCanceled();
    }
}
