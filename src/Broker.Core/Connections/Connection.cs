using System.Diagnostics;
using Akka;
using System.Buffers;
using System.Net.WebSockets;
using Akka.Actor;
using Akka.Streams.Dsl;
using Akka.Util;
using Broker.Core.Log;
using Broker.Core.Sessions;
using Broker.Core.Settings;
using Broker.Core.Topics;
using Broker.Protocol;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Connections;

/// <summary>
/// One WebSocket connection as an Akka.Streams pipeline:
/// <code>
/// socket ─(read on demand)→ decode/validate ─→ handle (≤ N requests in flight) ─→ ┐
/// node feeds / catch-up readers ───────────────────────────────────────────────→ ├→ bounded outbound buffer ─→ socket (one send at a time)
/// </code>
/// The inbound source reads a frame only when downstream asks for one, so a flooding client is
/// slowed by TCP. Replies wait for room in the outbound buffer; live messages never wait: a full
/// buffer closes the connection with 1013 slow_consumer.
/// With a durable session (<c>?session=</c>) the connection attaches to the session's actor before
/// it reads any request, resubscribes the session's topics from their committed positions with
/// their key filters and headers options, and persists every subscribe, unsubscribe and commit
/// there before it answers.
/// </summary>
public sealed class Connection
{
    private static readonly byte[] NoReply = [];
    private const int InitialReceiveBuffer = 4096;

    private readonly WebSocket _socket;
    private readonly NodeServices _node;
    private readonly ILogger _logger;
    private readonly Outbound _outbound;
    private readonly Metrics.BrokerMetrics _metrics;
    private readonly string _clientId;
    private readonly Dictionary<string, Subscription?> _subscriptions = new(StringComparer.Ordinal);
    private readonly string? _sessionId;
    private IActorRef? _endpoint;

    /// <param name="clientId">
    /// The client's identity for de-duplicating retried publishes across reconnects
    /// (<c>?client=</c>); null gives the connection an identity of its own.
    /// </param>
    /// <param name="sessionId">The durable session (<c>?session=</c>), already validated; null for none.</param>
    public Connection(WebSocket socket, NodeServices node, ILogger logger, string? clientId = null, string? sessionId = null)
    {
        if (sessionId is not null && (node.Sessions is null || node.System is null))
            throw new InvalidOperationException("durable sessions need the session region");
        _sessionId = sessionId;
        _socket = socket;
        _node = node;
        _logger = logger;
        _outbound = new Outbound(node.Settings.OutboundBufferFrames, node.Settings.OutboundBufferBytes);
        _clientId = clientId ?? Guid.NewGuid().ToString("N");
        _metrics = node.Metrics ?? new Metrics.BrokerMetrics();
    }

    public async Task RunAsync()
    {
        var id = _node.Registry.Add(_outbound);
        _metrics.ConnectionAccepted();
        try
        {
            var outboundDone = RunOutbound();
            // The session's restored subscriptions are answered before any request is read.
            if (_sessionId is not null) await AttachSession().ConfigureAwait(false);
            var inboundDone = RunInbound();
            _ = inboundDone.ContinueWith(_ => _outbound.RequestClose(CloseCodes.Normal, ""), TaskScheduler.Default);
            // The outbound stream ends on its own only when a send fails (peer gone): close, so that
            // replies waiting for room in the buffer nobody drains any more are released.
            _ = outboundDone.ContinueWith(_ => _outbound.RequestClose(CloseCodes.InternalError, "send failed"), TaskScheduler.Default);

            var close = await _outbound.Closed.ConfigureAwait(false);
            if (close.Code == CloseCodes.TryAgainLater) _metrics.SlowConsumerClosed();
            // From here the peer has CloseTimeout to finish the close handshake; a stuck peer is aborted.
            using var deadline = new CancellationTokenSource(_node.Settings.CloseTimeout);
            await using var abort = deadline.Token.Register(static s => ((WebSocket)s!).Abort(), _socket);
            await Quietly(outboundDone).ConfigureAwait(false);
            await SendClose(close).ConfigureAwait(false);
            await Quietly(inboundDone).ConfigureAwait(false);
        }
        finally
        {
            _node.Registry.Remove(id);
            await StopSubscriptions().ConfigureAwait(false);
            if (_endpoint is not null)
            {
                _node.Sessions!.Tell(new SessionCommands.Detach(_sessionId!, _endpoint));
                _node.System!.Stop(_endpoint);
            }
        }
    }

    private async Task SendClose(CloseRequest close)
    {
        if (_socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        try
        {
            await _socket.CloseOutputAsync((WebSocketCloseStatus)close.Code, close.Reason, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private static async Task Quietly(Task task)
    {
        try { await task.ConfigureAwait(false); }
        catch (Exception) { /* the socket failed or was aborted: the connection ends either way */ }
    }

    // ---- outbound -------------------------------------------------------------------------

    private Task RunOutbound() =>
        ChannelSource.FromReader(_outbound.Reader)
            .SelectAsync(1, Send) // a WebSocket allows one send at a time
            .RunWith(Sink.Ignore<NotUsed>(), _node.Materializer);

    private async Task<NotUsed> Send(byte[] frame)
    {
        _outbound.Sent(frame);
        if (_outbound.CloseRequested is not null) return NotUsed.Instance;
        try
        {
            await _socket.SendAsync(frame, WebSocketMessageType.Text, true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The peer is gone (or the socket was aborted): close; the rest of the buffer is dropped.
            _outbound.RequestClose(CloseCodes.InternalError, "send failed");
        }
        return NotUsed.Instance;
    }

    // ---- inbound --------------------------------------------------------------------------

    private Task RunInbound() =>
        Source.UnfoldAsync<byte[], DecodeResult>(new byte[InitialReceiveBuffer], ReadFrame)
            .SelectAsync(_node.Settings.MaxInflightRequests, Handle)
            .Where(static reply => reply.Length > 0)
            .SelectAsync(1, reply => _outbound.EnqueueAsync(reply).AsTask())
            .RunWith(Sink.Ignore<bool>(), _node.Materializer);

    /// <summary>Reads one whole message from the socket (called only on demand).</summary>
    private async Task<Option<(byte[], DecodeResult)>> ReadFrame(byte[] buffer)
    {
        var max = _node.Settings.MaxFrameBytes;
        var count = 0;
        byte[]? rented = null;
        try
        {
            while (true)
            {
                var target = rented ?? buffer;
                if (count == target.Length)
                {
                    // Grow (up to max + 1 bytes, enough to notice a frame that is too big).
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(Math.Max(target.Length * 2, 16 * 1024), max + 1));
                    target.AsSpan(0, count).CopyTo(bigger);
                    if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
                    rented = bigger;
                    target = bigger;
                }
                var result = await _socket.ReceiveAsync(target.AsMemory(count), CancellationToken.None).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close) return Option<(byte[], DecodeResult)>.None;
                count += result.Count;
                if (count > max)
                {
                    _outbound.RequestClose(CloseCodes.TooBig, $"frame larger than {max} bytes");
                    _metrics.BadInput("frame_too_big");
                    await DrainUntilClose(target).ConfigureAwait(false);
                    return Option<(byte[], DecodeResult)>.None;
                }
                if (!result.EndOfMessage) continue;
                if (_outbound.CloseRequested is not null) count = 0; // closing: read on (for the peer's close) but act on nothing
                var decoded = result.MessageType == WebSocketMessageType.Binary
                    ? DecodeResult.Fail(null, ErrorCodes.BadRequest, "binary frames are not supported: send one JSON object per text frame")
                    : count == 0
                        ? DecodeResult.Fail(null, ErrorCodes.BadRequest, "empty frame")
                        : RequestDecoder.Decode(target.AsSpan(0, count), _node.Settings.Limits);
                return Option<(byte[], DecodeResult)>.Create((buffer, decoded));
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            return Option<(byte[], DecodeResult)>.None; // peer gone or socket aborted
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>After a 1009, discards what the peer still sends until its close frame (or the close deadline).</summary>
    private async Task DrainUntilClose(byte[] scratch)
    {
        while (true)
        {
            var r = await _socket.ReceiveAsync(scratch.AsMemory(), CancellationToken.None).ConfigureAwait(false);
            if (r.MessageType == WebSocketMessageType.Close) return;
        }
    }

    // ---- requests -------------------------------------------------------------------------

    private async Task<byte[]> Handle(DecodeResult decoded)
    {
        if (_outbound.CloseRequested is not null) return NoReply;
        if (decoded.IsError)
        {
            _metrics.BadInput(decoded.Error.Code);
            return ServerFrames.Error(decoded.Id, decoded.Error);
        }
        try
        {
            return decoded.Request switch
            {
                PingRequest p => ServerFrames.Pong(p.Id),
                PublishRequest p => await Publish(p).ConfigureAwait(false),
                SubscribeRequest s => await Subscribe(s).ConfigureAwait(false),
                UnsubscribeRequest u => await Unsubscribe(u).ConfigureAwait(false),
                CommitRequest c => await Commit(c).ConfigureAwait(false),
                _ => ServerFrames.Error(decoded.Id, ErrorCodes.BadRequest, "unsupported request"),
            };
        }
        catch (TopicNotFoundException e)
        {
            return ServerFrames.Error(decoded.Id, ErrorCodes.NotFound, e.Message);
        }
        catch (Exception e) when (e is KafkaException or TimeoutException or OperationCanceledException)
        {
            return ServerFrames.Error(decoded.Id, ErrorCodes.Unavailable, "the log is unavailable; retry");
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Request failed");
            return ServerFrames.Error(decoded.Id, ErrorCodes.Internal, "internal error");
        }
    }

    /// <summary>The topic's Kafka mapping, or the error refusing it (unmapped topics with namespaces-default not_found or forbidden).</summary>
    private (TopicMapping? Mapping, byte[]? Error) Map(string? id, string topic)
    {
        var settings = _node.Log.Settings;
        if (settings.Resolve(topic) is { } mapping) return (mapping, null);
        return settings.Unmapped == UnmappedTopics.Forbidden
            ? (null, ServerFrames.Error(id, ErrorCodes.Forbidden, $"topic {topic} is in no namespace"))
            : (null, ServerFrames.Error(id, ErrorCodes.NotFound, $"topic {topic} is in no namespace"));
    }

    private async Task<byte[]> Publish(PublishRequest p)
    {
        var (mapping, refused) = Map(p.Id, p.Topic);
        if (refused is not null) return refused;
        if (mapping!.ReadOnly) return ServerFrames.Error(p.Id, ErrorCodes.Forbidden, $"topic {p.Topic} is read-only");
        if (!mapping.Create)
        {
            // A topic that must exist: checked once per node (cached), so a missing one is not_found, not unavailable.
            using var timeout = new CancellationTokenSource(_node.Settings.RequestTimeout);
            await _node.Log.EnsureTopicAsync(mapping, timeout.Token).ConfigureAwait(false);
        }
        object reply;
        var started = Stopwatch.GetTimestamp();
        try
        {
            reply = await _node.Topics.Ask<object>(
                new TopicCommands.Publish(p.Topic, p.Data, p.Key, _clientId, p.Id), _node.Settings.RequestTimeout).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            return ServerFrames.Error(p.Id, ErrorCodes.Unavailable, "the log did not acknowledge the message in time; retry");
        }
        return reply switch
        {
            TopicCommands.PublishAck a => Acked(p, a, started),
            TopicCommands.PublishRejected r => ServerFrames.Error(p.Id, r.Code, r.Message),
            _ => ServerFrames.Error(p.Id, ErrorCodes.Internal, "unexpected reply"),
        };
    }

    private byte[] Acked(PublishRequest p, TopicCommands.PublishAck a, long started)
    {
        _metrics.MessageIn();
        _metrics.PublishAckLatency.ObserveSince(started);
        return ServerFrames.Ack(p.Id, a.Topic, a.Pos);
    }

    private Task<byte[]> Subscribe(SubscribeRequest s) => Subscribe(s, restored: false);

    private async Task<byte[]> Subscribe(SubscribeRequest s, bool restored)
    {
        var (mapping, refused) = Map(s.Id, s.Topic);
        if (refused is not null) return refused;
        var kafkaTopic = mapping!.KafkaTopic;
        bool duplicate;
        lock (_subscriptions)
        {
            duplicate = _subscriptions.ContainsKey(s.Topic);
            if (!duplicate)
            {
                if (_subscriptions.Count >= _node.Settings.MaxSubscriptions)
                    return ServerFrames.Error(s.Id, ErrorCodes.BadRequest, $"at most {_node.Settings.MaxSubscriptions} subscriptions per connection");
                _subscriptions[s.Topic] = null; // reserved while it is being set up
            }
        }
        try
        {
            using var timeout = new CancellationTokenSource(_node.Settings.RequestTimeout);
            await _node.Log.EnsureTopicAsync(mapping, timeout.Token).ConfigureAwait(false);
            var heads = await _node.Log.QueryHeadsAsync(kafkaTopic, timeout.Token).ConfigureAwait(false);
            var head = new Position(heads.High);
            // Subscribing twice is idempotent: the existing subscription stays as it is.
            if (duplicate) return ServerFrames.Subscribed(s.Id, s.Topic, head, null);

            var (start, recovered) = StartOffsets(s, heads);
            if (start is null) return Fail(s, ServerFrames.Error(s.Id, ErrorCodes.BadRequest, "since is not a position of this topic"));
            if (s is { Since: null, Last: { } last } && heads.Partitions > 1) // since wins over last
                start = await _node.Replay.StartOfLastAsync(kafkaTopic, heads.Low, heads.High, last, timeout.Token).ConfigureAwait(false);
            if (_sessionId is not null && !restored)
            {
                // Durable: the session remembers the topic (resume from where it starts), its key filter and
                // headers option before the client hears `subscribed`.
                var stored = await AskSession(s.Id, new SessionCommands.AddSubscription(_sessionId, s.Topic, Position.Encode(start), s.Key, s.Headers)).ConfigureAwait(false);
                if (stored is not null) return Fail(s, stored);
            }
            var sub = new Subscription(s.Topic, kafkaTopic, _outbound, _node.Feeds, _node.Replay, _node.Settings.ReplayStallTimeout,
                s.Key is null ? null : System.Text.Encoding.UTF8.GetBytes(s.Key), s.Headers);
            lock (_subscriptions) _subscriptions[s.Topic] = sub;
            // The reply is queued before the first message of the subscription.
            if (await _outbound.EnqueueAsync(ServerFrames.Subscribed(s.Id, s.Topic, head, recovered)).ConfigureAwait(false)) sub.Start(start, heads.High);
            return NoReply;
        }
        catch when (!duplicate)
        {
            lock (_subscriptions) _subscriptions.Remove(s.Topic);
            throw;
        }
    }

    private byte[] Fail(SubscribeRequest s, byte[] error)
    {
        lock (_subscriptions) _subscriptions.Remove(s.Topic);
        return error;
    }

    /// <summary>
    /// Where a subscription starts reading (next offsets per partition): null when <c>since</c> does
    /// not fit the topic. <c>last</c> counts per partition here; across several partitions the
    /// caller narrows it to the last N in merge order.
    /// </summary>
    internal static (long[]? Start, bool? Recovered) StartOffsets(SubscribeRequest s, TopicHeads heads)
    {
        var n = heads.Partitions;
        var start = new long[n];
        if (s.Since is { } since)
        {
            // A position may lack partitions added to the topic since (nothing of them was seen);
            // one with more partitions than the topic is not of this topic.
            if (since.PartitionCount > n) return (null, null);
            var recovered = true;
            for (var p = 0; p < n; p++)
            {
                var next = p < since.PartitionCount ? since.NextOffset(p) : 0;
                // Older than retention, or from a log that no longer holds it: deliver what is retained.
                if (next < heads.Low[p] || next > heads.High[p])
                {
                    recovered = false;
                    next = heads.Low[p];
                }
                start[p] = next;
            }
            return (start, recovered);
        }
        for (var p = 0; p < n; p++)
        {
            start[p] = s.Last is { } last ? Math.Max(heads.Low[p], heads.High[p] - last)
                : s.From == StartFrom.Earliest ? heads.Low[p] : heads.High[p];
        }
        return (start, null);
    }

    private async Task<byte[]> Unsubscribe(UnsubscribeRequest u)
    {
        Subscription? sub;
        lock (_subscriptions)
        {
            if (!_subscriptions.TryGetValue(u.Topic, out sub) || sub is null)
                return ServerFrames.Error(u.Id, ErrorCodes.NotFound, $"not subscribed to {u.Topic}");
        }
        if (_sessionId is not null)
        {
            var stored = await AskSession(u.Id, new SessionCommands.RemoveSubscription(_sessionId, u.Topic)).ConfigureAwait(false);
            if (stored is not null) return stored;
        }
        lock (_subscriptions)
        {
            if (!_subscriptions.Remove(u.Topic)) return ServerFrames.Error(u.Id, ErrorCodes.NotFound, $"not subscribed to {u.Topic}");
        }
        await sub.StopAsync().ConfigureAwait(false);
        return ServerFrames.Unsubscribed(u.Id, u.Topic);
    }

    // ---- durable sessions -----------------------------------------------------------------

    /// <summary>
    /// Attaches to the session (a connection attached before is closed by the session) and
    /// resubscribes its topics, each strictly after its committed position, with the key filter and
    /// headers option it was subscribed with.
    /// </summary>
    private async Task AttachSession()
    {
        _endpoint = _node.System!.ActorOf(SessionEndpoint.Props(_outbound));
        SessionCommands.Attached attached;
        try
        {
            attached = await _node.Sessions!.Ask<SessionCommands.Attached>(
                new SessionCommands.Attach(_sessionId!, _endpoint), _node.SessionSettings!.RequestTimeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            await _outbound.EnqueueAsync(ServerFrames.Error(null, ErrorCodes.Unavailable,
                "the session store is unavailable: the session's subscriptions were not restored; retry")).ConfigureAwait(false);
            return;
        }
        foreach (var topic in attached.Topics)
        {
            if (!Position.TryParse(topic.Pos, out var pos) || !TopicName.IsValid(topic.Topic)) continue;
            byte[] reply;
            try
            {
                reply = await Subscribe(new SubscribeRequest(null, topic.Topic, StartFrom.Latest, pos, null, topic.Key, topic.Headers), restored: true).ConfigureAwait(false);
            }
            catch (Exception e) when (e is KafkaException or TimeoutException or OperationCanceledException)
            {
                reply = ServerFrames.Error(null, ErrorCodes.Unavailable, $"the log is unavailable: {topic.Topic} was not resubscribed");
            }
            if (reply.Length > 0) await _outbound.EnqueueAsync(reply).ConfigureAwait(false);
        }
    }

    private async Task<byte[]> Commit(CommitRequest c)
    {
        if (_sessionId is null)
            return ServerFrames.Error(c.Id, ErrorCodes.BadRequest, "commit needs a durable session (connect with ?session=<id>)");
        lock (_subscriptions)
        {
            if (!_subscriptions.TryGetValue(c.Topic, out var sub) || sub is null)
                return ServerFrames.Error(c.Id, ErrorCodes.NotFound, $"the session is not subscribed to {c.Topic}");
        }
        using (var timeout = new CancellationTokenSource(_node.Settings.RequestTimeout))
        {
            var heads = await _node.Log.QueryHeadsAsync(_node.Log.Settings.KafkaTopicFor(c.Topic), timeout.Token).ConfigureAwait(false);
            if (c.Pos.PartitionCount > heads.Partitions) return ServerFrames.Error(c.Id, ErrorCodes.BadRequest, "pos is not a position of this topic");
            for (var p = 0; p < c.Pos.PartitionCount; p++)
            {
                if (c.Pos.NextOffset(p) > heads.High[p]) return ServerFrames.Error(c.Id, ErrorCodes.BadRequest, "pos is ahead of the topic's head");
            }
        }
        return await AskSession(c.Id, new SessionCommands.Commit(_sessionId, c.Topic, c.Pos.Encode())).ConfigureAwait(false) ?? NoReply;
    }

    /// <summary>Sends a change to the session; null once it is persisted, else the error frame to answer.</summary>
    private async Task<byte[]?> AskSession(string? requestId, IWithSessionId command)
    {
        object reply;
        try
        {
            reply = await _node.Sessions!.Ask<object>(command, _node.SessionSettings!.RequestTimeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            return ServerFrames.Error(requestId, ErrorCodes.Unavailable, "the session store is unavailable; retry");
        }
        return reply switch
        {
            SessionCommands.Done => null,
            SessionCommands.Rejected r => ServerFrames.Error(requestId, r.Code, r.Message),
            _ => ServerFrames.Error(requestId, ErrorCodes.Internal, "unexpected reply from the session"),
        };
    }

    private async Task StopSubscriptions()
    {
        Subscription?[] subs;
        lock (_subscriptions)
        {
            subs = [.. _subscriptions.Values];
            _subscriptions.Clear();
        }
        foreach (var s in subs)
        {
            if (s is not null) await s.StopAsync().ConfigureAwait(false);
        }
    }
}
