using System.Net.WebSockets;

namespace Broker.Client;

/// <summary>Options of a <see cref="BrokerClient"/>. Every default is a plain value documented here.</summary>
public sealed class BrokerClientOptions
{
    /// <summary>
    /// The client's identity (<c>?client=</c>, 1–128 characters of <c>A-Z a-z 0-9 . _ -</c>): a publish
    /// resent with the same identity and request id is written once. Null: one is generated for this
    /// <see cref="BrokerClient"/> and kept across its reconnects. Supply one that no other client uses
    /// (e.g. a UUID stored by the application) to keep it across restarts of the process.
    /// </summary>
    public string? ClientId { get; init; }

    /// <summary>
    /// A durable session id (<c>?session=</c>, same characters as <see cref="ClientId"/>): the broker
    /// remembers the session's subscriptions and committed positions and restores them on every
    /// connection, also after this process restarts. Null: no session.
    /// </summary>
    public string? Session { get; init; }

    /// <summary>
    /// With a <see cref="Session"/>: commit every message once the application asked for the next one
    /// (it is processed), at most every <see cref="AutoCommitInterval"/> and when the client is disposed.
    /// Default false: commit with <see cref="BrokerSubscription.CommitAsync(string)"/>.
    /// </summary>
    public bool AutoCommit { get; init; }

    /// <summary>How often processed positions are committed with <see cref="AutoCommit"/>. Default 1 s.</summary>
    public TimeSpan AutoCommitInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Ask the broker to coalesce server frames into JSON arrays (<c>?batch=1</c>). Default false.</summary>
    public bool Batch { get; init; }

    /// <summary>
    /// Supplies a token (a JWT) when the broker requires auth: called before every connection (the token
    /// is the connection's first frame, <c>{"type":"auth"}</c>) and when the broker announces
    /// <c>token_expiring</c> (the new token replaces the old one on the open connection). Null: no auth frame.
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? TokenProvider { get; init; }

    /// <summary>How reconnects are paced and bounded.</summary>
    public ReconnectOptions Reconnect { get; init; } = new();

    /// <summary>
    /// Publishes that may wait for their ack at once, connected or not (while disconnected they are
    /// queued and sent after the reconnect). One more throws <see cref="PublishQueueFullException"/>.
    /// Default 10,000.
    /// </summary>
    public int MaxPendingPublishes { get; init; } = 10_000;

    /// <summary>Messages a subscription buffers before the client stops reading the connection (see <see cref="SubscribeOptions.BufferCapacity"/>). Default 1,024.</summary>
    public int SubscriptionBufferCapacity { get; init; } = 1024;

    /// <summary>
    /// Largest frame the client sends, matching the broker's <c>broker.websocket.max-frame-bytes</c>
    /// (a larger frame would close the connection with 1009). A larger publish throws
    /// <see cref="BrokerErrorException"/> <c>too_large</c> without being sent. Default 64 KiB.
    /// </summary>
    public int MaxFrameBytes { get; init; } = 64 * 1024;

    /// <summary>Time for the WebSocket handshake, the auth frame and the session's restore before an attempt counts as failed. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Interval of the client's WebSocket pings. Default 15 s.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A connection whose ping is not answered within this time is dropped and reconnected. Default 30 s.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Sets anything else on the <see cref="ClientWebSocket"/> (headers, proxy, certificates) before each connection.</summary>
    public Action<ClientWebSocketOptions>? ConfigureWebSocket { get; init; }

    internal void Validate()
    {
        if (ClientId is not null && !Names.IsValidIdentity(ClientId))
            throw new ArgumentException("ClientId must be 1-128 characters of A-Z a-z 0-9 . _ -", nameof(ClientId));
        if (Session is not null && !Names.IsValidIdentity(Session))
            throw new ArgumentException("Session must be 1-128 characters of A-Z a-z 0-9 . _ -", nameof(Session));
        if (AutoCommit && Session is null) throw new ArgumentException("AutoCommit needs a Session", nameof(AutoCommit));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(AutoCommitInterval, TimeSpan.Zero, nameof(AutoCommitInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPendingPublishes, 1, nameof(MaxPendingPublishes));
        ArgumentOutOfRangeException.ThrowIfLessThan(SubscriptionBufferCapacity, 1, nameof(SubscriptionBufferCapacity));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxFrameBytes, 256, nameof(MaxFrameBytes));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero, nameof(ConnectTimeout));
        Reconnect.Validate();
    }
}

/// <summary>
/// Exponential backoff with jitter between connection attempts: attempt n (1, 2, …) waits
/// min(<see cref="MaxDelay"/>, <see cref="InitialDelay"/> × <see cref="Multiplier"/>^(n−1)), of which
/// the fraction <see cref="Jitter"/> is random, so that clients dropped together do not return together.
/// The count restarts after every successful connection.
/// </summary>
public sealed class ReconnectOptions
{
    /// <summary>Delay before the first reconnect attempt. Default 200 ms.</summary>
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest delay between attempts. Default 10 s.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Growth of the delay per failed attempt. Default 2.</summary>
    public double Multiplier { get; init; } = 2;

    /// <summary>Fraction of each delay that is random, 0–1: a delay d becomes a value in [d·(1−Jitter), d]. Default 0.5.</summary>
    public double Jitter { get; init; } = 0.5;

    /// <summary>Consecutive failed attempts after which the client stops (<see cref="BrokerClosedException"/>); null: never. Default null.</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>The delay before attempt <paramref name="attempt"/> (1-based) given a uniform random number in [0, 1).</summary>
    public TimeSpan DelayFor(int attempt, double random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        // Grow in doubles and cap before converting: Multiplier^n overflows TimeSpan long before it overflows a double.
        var ms = Math.Min(MaxDelay.TotalMilliseconds, InitialDelay.TotalMilliseconds * Math.Pow(Multiplier, Math.Min(attempt - 1, 64)));
        return TimeSpan.FromMilliseconds(ms * (1 - Jitter * Math.Clamp(random, 0, 1)));
    }

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(InitialDelay, TimeSpan.Zero, nameof(InitialDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDelay, InitialDelay, nameof(MaxDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(Multiplier, 1, nameof(Multiplier));
        if (Jitter is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(Jitter), Jitter, "Jitter must be between 0 and 1");
        if (MaxAttempts is < 1) throw new ArgumentOutOfRangeException(nameof(MaxAttempts), MaxAttempts, "MaxAttempts must be at least 1");
    }
}

/// <summary>Where a new subscription starts.</summary>
public enum StartFrom
{
    /// <summary>Only messages published after the subscription (the default).</summary>
    Latest,
    /// <summary>Every retained message, then live.</summary>
    Earliest,
}

/// <summary>Options of one subscription.</summary>
public sealed class SubscribeOptions
{
    /// <summary>Where to start when neither <see cref="Since"/> nor <see cref="Last"/> is given. Default <see cref="StartFrom.Latest"/>.</summary>
    public StartFrom From { get; init; }

    /// <summary>Resume strictly after this position (a <c>pos</c> the application stored); wins over <see cref="From"/> and <see cref="Last"/>.</summary>
    public string? Since { get; init; }

    /// <summary>Deliver the last N retained messages first, then live.</summary>
    public int? Last { get; init; }

    /// <summary>Only messages with exactly this key.</summary>
    public string? Key { get; init; }

    /// <summary>Deliver the Kafka record headers with each message.</summary>
    public bool Headers { get; init; }

    /// <summary>
    /// Messages buffered for the application; null: <see cref="BrokerClientOptions.SubscriptionBufferCapacity"/>.
    /// When the buffer is full the client stops reading the connection until the application takes a
    /// message (every subscription and ack of the connection waits); if that lasts, the broker closes
    /// the connection with 1013 and the client resumes where the buffer ended: nothing is lost.
    /// </summary>
    public int? BufferCapacity { get; init; }
}
