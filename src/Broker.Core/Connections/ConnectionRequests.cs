using Broker.Core.Fanout;
using Broker.Core.Log;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Security;
using Broker.Core.Sessions;
using Broker.Core.Settings;
using Broker.Protocol;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Connections;

/// <summary>
/// The requests of one connection. The connection's read loop hands them over one at a time and
/// waits for each, so this class is the single owner of the connection's subscriptions (no locks):
/// subscribe, unsubscribe and commit run in the order the client sent them. Publishes are the
/// exception: up to <c>max-inflight-requests</c> wait for their acks at once, each reply queued
/// when its ack comes (acks of one topic keep publish order: its writer answers in log order).
/// With a durable session, every subscribe, unsubscribe and commit is stored in the session
/// before the client hears about it.
/// </summary>
internal sealed class ConnectionRequests
{
    private readonly NodeServices _node;
    private readonly OutboundQueue _outbound;
    private readonly ILogger _logger;
    /// <summary>The client's identity for its publishes; null until the first publish of a connection that is its own identity.</summary>
    private string? _clientId;
    private readonly Func<SessionLink>? _openSession;
    private readonly ConnectionSecurity? _security;
    private SessionLink? _session;
    /// <summary>The session (if any) was attached and its subscriptions restored on this connection.</summary>
    private bool _sessionRestored;
    /// <summary>
    /// Topics of the session whose resubscribe failed when it was restored (the log did not answer):
    /// a later subscribe of one of them resumes after the session's commit, not from the request's start.
    /// </summary>
    private Dictionary<string, SessionTopic>? _notResubscribed;
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly ReplayShare _replays;
    private readonly Lock _slots = new();
    private int _publishing;
    private TaskCompletionSource? _slotFree;

    /// <param name="clientId">The client's <c>?client=</c>; null: the connection is its own identity (a random id, made at its first publish).</param>
    /// <param name="session">Opens the link to the connection's durable session (null: none); called once the client may act (after its first-frame auth).</param>
    /// <param name="security">Identity, auth flow, permissions and rates of the connection (null: none checked).</param>
    public ConnectionRequests(NodeServices node, OutboundQueue outbound, ILogger logger, string? clientId, Func<SessionLink>? session, ConnectionSecurity? security = null)
    {
        _node = node;
        _outbound = outbound;
        _logger = logger;
        _clientId = clientId;
        _openSession = session;
        _security = security;
        security?.Attach(outbound);
        _replays = new ReplayShare(node.Settings.MaxReplaysPerConnection);
    }

    private ConnectionSettings Settings => _node.Settings;

    /// <summary>Handles one request; returns once its reply is queued (a publish: once it is on its way).</summary>
    public async ValueTask HandleAsync(DecodeResult decoded)
    {
        if (_security is not null && await _security.InterceptAsync(decoded).ConfigureAwait(false) is { } step)
        {
            if (step == AuthStep.Authenticated) await RestoreSessionAsync().ConfigureAwait(false);
            else if (step == AuthStep.Refreshed) await RecheckSubscriptionsAsync().ConfigureAwait(false);
            return;
        }
        if (decoded.IsError)
        {
            _node.Metrics.BadInput(decoded.Error.Code);
            Reply(ServerFrames.Error(decoded.Id, decoded.Error));
            return;
        }
        var request = decoded.Request!;
        try
        {
            switch (request)
            {
                case PingRequest p:
                    Reply(ServerFrames.Pong(p.Id));
                    break;
                case PublishRequest p:
                    if (_security is not null && await _security.CheckPublishAsync(p.Topic, p.Data.Length).ConfigureAwait(false) is { } denied)
                    {
                        Reply(ServerFrames.Error(p.Id, denied));
                        break;
                    }
                    StartPublish(p);
                    break;
                case SubscribeRequest s:
                    Reply(await SessionRestoredAsync().ConfigureAwait(false)
                        ? await SubscribeAsync(s, restored: false).ConfigureAwait(false)
                        : SessionNotRestored(s.Id));
                    break;
                case UnsubscribeRequest u:
                    Reply(await SessionRestoredAsync().ConfigureAwait(false) ? await UnsubscribeAsync(u).ConfigureAwait(false) : SessionNotRestored(u.Id));
                    break;
                case CommitRequest c:
                    Reply(await SessionRestoredAsync().ConfigureAwait(false) ? await CommitAsync(c).ConfigureAwait(false) : SessionNotRestored(c.Id));
                    break;
                default:
                    Reply(ServerFrames.Error(request.Id, ErrorCodes.BadRequest, "unsupported request"));
                    break;
            }
        }
        catch (TopicNotFoundException e)
        {
            Reply(ServerFrames.Error(request.Id, ErrorCodes.NotFound, e.Message));
        }
        catch (Exception e) when (e is KafkaException or TimeoutException or OperationCanceledException)
        {
            Reply(ServerFrames.Error(request.Id, ErrorCodes.Unavailable, "the log is unavailable; retry"));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Request failed");
            Reply(ServerFrames.Error(request.Id, ErrorCodes.Internal, "internal error"));
        }
    }

    private void Reply(byte[]? frame)
    {
        if (frame is not null) _outbound.EnqueueReply(frame);
    }

    // ---- publish ---------------------------------------------------------------------------

    /// <summary>Completes when another publish may start (at once while fewer than the limit are in flight), or when the connection closes.</summary>
    public Task WaitForPublishSlotAsync()
    {
        lock (_slots)
        {
            if (_publishing < Settings.MaxInflightRequests || _outbound.CloseRequested is not null) return Task.CompletedTask;
            return (_slotFree ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    /// <summary>Wakes a read loop waiting for a publish slot because the connection is closing.</summary>
    public void ReleaseWaiters()
    {
        TaskCompletionSource? free;
        lock (_slots)
        {
            free = _slotFree;
            _slotFree = null;
        }
        free?.TrySetResult();
    }

    private void StartPublish(PublishRequest p)
    {
        lock (_slots) _publishing++;
        _ = PublishAsync(p, _clientId ??= Guid.NewGuid().ToString("N")); // made here, by the request owner
    }

    private async Task PublishAsync(PublishRequest p, string clientId)
    {
        try
        {
            var outcome = await _node.Publisher.PublishAsync(p.Topic, p.Data, p.Key, _security?.Scope(clientId) ?? clientId, p.Id).ConfigureAwait(false);
            Reply(outcome.Acked ? ServerFrames.Ack(p.Id, p.Topic, outcome.Pos!) : ServerFrames.Error(p.Id, outcome.Error));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Publish failed");
            Reply(ServerFrames.Error(p.Id, ErrorCodes.Internal, "internal error"));
        }
        finally
        {
            TaskCompletionSource? free = null;
            lock (_slots)
            {
                _publishing--;
                if (_slotFree is not null && _publishing < Settings.MaxInflightRequests)
                {
                    free = _slotFree;
                    _slotFree = null;
                }
            }
            free?.TrySetResult();
        }
    }

    // ---- subscribe -------------------------------------------------------------------------

    /// <summary>The reply to a subscribe, or null when the reply is already queued (before the first message).</summary>
    private async Task<byte[]?> SubscribeAsync(SubscribeRequest s, bool restored)
    {
        if (_security is not null && await _security.CheckSubscribeAsync(s.Topic, restored).ConfigureAwait(false) is { } denied) return ServerFrames.Error(s.Id, denied);
        if (TopicRouting.Refusal(_node.Log.Settings, s.Topic) is { } refused) return ServerFrames.Error(s.Id, refused);
        var mapping = _node.Log.Settings.Resolve(s.Topic)!;
        if (_subscriptions.ContainsKey(s.Topic)) return await DuplicateAsync(s, mapping).ConfigureAwait(false);
        if (!restored && _notResubscribed is not null && _notResubscribed.Remove(s.Topic, out var kept))
            return await ResubscribeAsync(kept, s.Id).ConfigureAwait(false);
        if (_subscriptions.Count >= Settings.MaxSubscriptions)
            return ServerFrames.Error(s.Id, ErrorCodes.BadRequest, $"at most {Settings.MaxSubscriptions} subscriptions per connection");

        using var timeout = new CancellationTokenSource(Settings.RequestTimeout);
        var sub = new Subscription(s.Topic, mapping, _outbound, _node, s.Key is null ? null : System.Text.Encoding.UTF8.GetBytes(s.Key), s.Headers,
            _replays, _logger);
        if (mapping.Multiplexed) await SharedFeeds.EnsureReadingAsync(_node.Feeds, _node.Log, mapping, timeout.Token).ConfigureAwait(false);
        // From "latest" on a topic the node reads already (every topic of a multiplexed namespace
        // whose shared topic the node reads): joined in step with the feed, no query of the log. A
        // durable session stores its start first, so it takes the general way below.
        if (s is { Since: null, Last: null, From: StartFrom.Latest } && _session is null
            && sub.TryStartAtHead(head => _outbound.EnqueueReply(ServerFrames.Subscribed(s.Id, s.Topic, head, null))))
        {
            _subscriptions[s.Topic] = sub;
            return null;
        }
        return mapping.Multiplexed
            ? await SubscribeSharedAsync(s, mapping, sub, restored, timeout.Token).ConfigureAwait(false)
            : await SubscribeTopicAsync(s, mapping, sub, restored, timeout.Token).ConfigureAwait(false);
    }

    /// <summary>Subscribing twice is idempotent: the existing subscription stays as it is; the reply has the current head.</summary>
    private async Task<byte[]> DuplicateAsync(SubscribeRequest s, TopicMapping mapping)
    {
        using var timeout = new CancellationTokenSource(Settings.RequestTimeout);
        if (mapping.Multiplexed)
        {
            var wm = await _node.Log.QueryWatermarksAsync(mapping.KafkaTopic, mapping.SharedPartition, timeout.Token).ConfigureAwait(false);
            return ServerFrames.Subscribed(s.Id, s.Topic, Position.Single(Math.Max(0, wm.High.Value)), null);
        }
        var heads = await _node.Log.QueryHeadsAsync(mapping.KafkaTopic, timeout.Token).ConfigureAwait(false);
        return ServerFrames.Subscribed(s.Id, s.Topic, new Position(heads.High), null);
    }

    private async Task<byte[]?> SubscribeTopicAsync(SubscribeRequest s, TopicMapping mapping, Subscription sub, bool restored, CancellationToken ct)
    {
        await _node.Log.EnsureTopicAsync(mapping, ct).ConfigureAwait(false);
        var heads = await _node.Log.QueryHeadsAsync(mapping.KafkaTopic, ct).ConfigureAwait(false);
        var (start, recovered) = StartOffsets.For(s, heads);
        if (start is null) return ServerFrames.Error(s.Id, ErrorCodes.BadRequest, "since is not a position of this topic");
        if (s is { Since: null, Last: { } last } && heads.Partitions > 1) // since wins over last
            start = await _node.Replay.StartOfLastAsync(mapping.KafkaTopic, heads.Low, heads.High, last, ct).ConfigureAwait(false);
        if (await StoreInSessionAsync(s, new Position(start), restored).ConfigureAwait(false) is { } refused) return refused;
        _subscriptions[s.Topic] = sub;
        // The reply is queued before the first message of the subscription.
        if (_outbound.EnqueueReply(ServerFrames.Subscribed(s.Id, s.Topic, new Position(heads.High), recovered, restored ? new Position(start) : null)))
            sub.Start(start, heads.High);
        return null;
    }

    /// <summary>
    /// A topic of a multiplexed namespace: its position is one offset of its partition of the shared
    /// Kafka topic. <c>since</c> and <c>earliest</c> need that partition's watermarks (one query);
    /// <c>last: N</c> is served from the feed's recent history when it can, else from the offset
    /// index (only the topic's last N records are read), else the partition is scanned backwards for
    /// the topic's last N records.
    /// </summary>
    private async Task<byte[]?> SubscribeSharedAsync(SubscribeRequest s, TopicMapping mapping, Subscription sub, bool restored, CancellationToken ct)
    {
        if (s.Since is { PartitionCount: not 1 }) return ServerFrames.Error(s.Id, ErrorCodes.BadRequest, "since is not a position of this topic");
        var wm = await _node.Log.QueryWatermarksAsync(mapping.KafkaTopic, mapping.SharedPartition, ct).ConfigureAwait(false);
        var low = Math.Max(0, wm.Low.Value);
        var high = Math.Max(low, wm.High.Value);
        bool? recovered = null;
        long start;
        if (s.Since is { } since)
        {
            start = since.NextOffset(0);
            recovered = start >= low && start <= high;
            if (recovered == false) start = low; // older than retention, or from a log that no longer holds it
        }
        else if (s.Last is { } last)
        {
            if (_session is null && sub.TryStartLast(last, low, high, head => _outbound.EnqueueReply(ServerFrames.Subscribed(s.Id, s.Topic, head, null))))
            {
                _subscriptions[s.Topic] = sub;
                return null;
            }
            var indexed = await _node.Feeds.LastOffsetsAsync(mapping.KafkaTopic, s.Topic, mapping.SharedPartition, last, low, high, ct).ConfigureAwait(false);
            if (indexed.Outcome == IndexLookup.Found)
            {
                if (await StoreInSessionAsync(s, Position.Single(indexed.Start), restored).ConfigureAwait(false) is { } notStored) return notStored;
                _subscriptions[s.Topic] = sub;
                // The head is the feed's position (at or past `high`), as from the recent history: the records below it are the history.
                if (_outbound.EnqueueReply(ServerFrames.Subscribed(s.Id, s.Topic, Position.Single(indexed.End), null, restored ? Position.Single(indexed.Start) : null)))
                    sub.StartShared(OffsetIndex.Coalesce(indexed.Offsets, _node.Feeds.IndexSettings.CoalesceGap), indexed.End);
                return null;
            }
            start = await _node.Replay.StartOfLastSharedAsync(mapping.KafkaTopic, mapping.SharedPartition, System.Text.Encoding.UTF8.GetBytes(s.Topic), low, high, last, ct).ConfigureAwait(false);
        }
        else start = s.From == StartFrom.Earliest ? low : high;
        if (await StoreInSessionAsync(s, Position.Single(start), restored).ConfigureAwait(false) is { } refused) return refused;
        _subscriptions[s.Topic] = sub;
        if (_outbound.EnqueueReply(ServerFrames.Subscribed(s.Id, s.Topic, Position.Single(high), recovered, restored ? Position.Single(start) : null)))
            sub.StartShared(start);
        return null;
    }

    /// <summary>
    /// Durable: the session remembers the topic (resume from where it starts), its key filter and
    /// headers option before the client hears <c>subscribed</c>. Null when stored (or no session).
    /// </summary>
    private async Task<byte[]?> StoreInSessionAsync(SubscribeRequest s, Position start, bool restored)
    {
        if (_session is null || restored) return null;
        return await _session.AddSubscriptionAsync(s.Topic, start.Encode(), s.Key, s.Headers).ConfigureAwait(false) is { } stored
            ? ServerFrames.Error(s.Id, stored)
            : null;
    }

    private async Task<byte[]> UnsubscribeAsync(UnsubscribeRequest u)
    {
        if (_notResubscribed is not null && _notResubscribed.ContainsKey(u.Topic))
        {
            // A topic of the session that the log kept from being resubscribed: the session forgets it.
            if (await _session!.RemoveSubscriptionAsync(u.Topic).ConfigureAwait(false) is { } notRemoved) return ServerFrames.Error(u.Id, notRemoved);
            _notResubscribed.Remove(u.Topic);
            return ServerFrames.Unsubscribed(u.Id, u.Topic);
        }
        if (!_subscriptions.TryGetValue(u.Topic, out var sub)) return ServerFrames.Error(u.Id, ErrorCodes.NotFound, $"not subscribed to {u.Topic}");
        if (_session is not null && await _session.RemoveSubscriptionAsync(u.Topic).ConfigureAwait(false) is { } stored)
            return ServerFrames.Error(u.Id, stored);
        _subscriptions.Remove(u.Topic);
        await sub.StopAsync().ConfigureAwait(false);
        return ServerFrames.Unsubscribed(u.Id, u.Topic);
    }

    // ---- durable sessions ------------------------------------------------------------------

    /// <summary>
    /// Attaches to the session (a connection attached before is closed by the session) and
    /// resubscribes its topics, each strictly after its committed position, with the key filter and
    /// headers option it was subscribed with. Runs before any request is read.
    /// </summary>
    public async Task RestoreSessionAsync()
    {
        if (_openSession is null || _security is { Ready: false }) return;
        _session ??= _openSession();
        var topics = await _session.AttachAsync().ConfigureAwait(false);
        if (topics is null)
        {
            Reply(ServerFrames.Error(null, ErrorCodes.Unavailable, "the session store is unavailable: the session's subscriptions were not restored; retry"));
            return;
        }
        _sessionRestored = true;
        foreach (var topic in topics)
        {
            if (!Position.TryParse(topic.Pos, out _) || !TopicName.IsValid(topic.Topic)) continue;
            byte[]? reply;
            try
            {
                reply = await ResubscribeAsync(topic, id: null).ConfigureAwait(false);
            }
            catch (Exception e) when (e is KafkaException or TimeoutException or OperationCanceledException or TopicNotFoundException)
            {
                reply = ServerFrames.Error(null, ErrorCodes.Unavailable, $"the log is unavailable: {topic.Topic} was not resubscribed");
            }
            Reply(reply);
        }
    }

    /// <summary>
    /// Subscribes a topic of the session strictly after its committed position, with the key filter
    /// and headers option it was subscribed with. When the log does not answer, the topic is kept:
    /// the client's next subscribe of it resumes from the session (the request's own <c>from</c>,
    /// <c>since</c> or <c>last</c> would replay what was committed, or skip what was not).
    /// </summary>
    private async Task<byte[]?> ResubscribeAsync(SessionTopic topic, string? id)
    {
        if (!Position.TryParse(topic.Pos, out var pos)) return null;
        try
        {
            return await SubscribeAsync(new SubscribeRequest(id, topic.Topic, StartFrom.Latest, pos, null, topic.Key, topic.Headers), restored: true).ConfigureAwait(false);
        }
        catch
        {
            (_notResubscribed ??= new(StringComparer.Ordinal))[topic.Topic] = topic;
            throw;
        }
    }

    /// <summary>
    /// True without a session or once it was restored. A session whose restore failed (its store or
    /// its shard did not answer in time) is attached and restored again before a subscribe,
    /// unsubscribe or commit is handled: handled on a connection the session was not restored to,
    /// a subscribe would store a new start over the session's committed position and replay from
    /// there (from the log's start with <c>earliest</c>) once the session answers again.
    /// </summary>
    private async ValueTask<bool> SessionRestoredAsync()
    {
        if (_openSession is null || _sessionRestored) return true;
        await RestoreSessionAsync().ConfigureAwait(false);
        return _sessionRestored;
    }

    private static byte[] SessionNotRestored(string? id) =>
        ServerFrames.Error(id, ErrorCodes.Unavailable, "the session store is unavailable: the session is not restored; nothing was done; retry");

    private async Task<byte[]?> CommitAsync(CommitRequest c)
    {
        if (_session is null)
            return ServerFrames.Error(c.Id, ErrorCodes.BadRequest, "commit needs a durable session (connect with ?session=<id>)");
        if (_security?.CheckRead(c.Topic) is { } denied) return ServerFrames.Error(c.Id, denied);
        if (!_subscriptions.TryGetValue(c.Topic, out var sub))
            return ServerFrames.Error(c.Id, ErrorCodes.NotFound, $"the session is not subscribed to {c.Topic}");
        using (var timeout = new CancellationTokenSource(Settings.RequestTimeout))
        {
            var heads = sub.Mapping.Multiplexed
                ? await SharedHeadsAsync(sub.Mapping, timeout.Token).ConfigureAwait(false)
                : await _node.Log.QueryHeadsAsync(sub.KafkaTopic, timeout.Token).ConfigureAwait(false);
            if (c.Pos.PartitionCount > heads.Partitions) return ServerFrames.Error(c.Id, ErrorCodes.BadRequest, "pos is not a position of this topic");
            for (var p = 0; p < c.Pos.PartitionCount; p++)
            {
                if (c.Pos.NextOffset(p) > heads.High[p]) return ServerFrames.Error(c.Id, ErrorCodes.BadRequest, "pos is ahead of the topic's head");
            }
        }
        return await _session.CommitAsync(c.Topic, c.Pos.Encode()).ConfigureAwait(false) is { } stored ? ServerFrames.Error(c.Id, stored) : null;
    }

    /// <summary>A multiplexed topic's watermarks as a one-partition topic's (its partition of the shared Kafka topic).</summary>
    private async Task<TopicHeads> SharedHeadsAsync(TopicMapping mapping, CancellationToken ct)
    {
        var wm = await _node.Log.QueryWatermarksAsync(mapping.KafkaTopic, mapping.SharedPartition, ct).ConfigureAwait(false);
        var low = Math.Max(0, wm.Low.Value);
        return new TopicHeads([low], [Math.Max(low, wm.High.Value)]);
    }

    /// <summary>After a token refresh: subscriptions the new token no longer allows are stopped (nothing more is delivered) and reported as <c>forbidden</c>.</summary>
    private async Task RecheckSubscriptionsAsync()
    {
        foreach (var (topic, sub) in _subscriptions.ToList())
        {
            if (_security!.CheckRead(topic) is not { } denied) continue;
            _subscriptions.Remove(topic);
            await sub.StopAsync().ConfigureAwait(false);
            Reply(ServerFrames.Error(null, denied.Code, $"unsubscribed from {topic}: {denied.Message}"));
        }
    }

    /// <summary>The connection ended: stops every subscription (nothing more is delivered) and detaches the session.</summary>
    public async Task StopAsync()
    {
        foreach (var sub in _subscriptions.Values) await sub.StopAsync().ConfigureAwait(false);
        _subscriptions.Clear();
        _session?.Detach();
    }
}
