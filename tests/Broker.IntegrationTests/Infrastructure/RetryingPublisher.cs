using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Broker.Protocol;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>One answer a publisher got, with the time it arrived (UTC).</summary>
public sealed record PublishAnswer(DateTime At, int Index, string Type, string? Code, string? Message, string? Pos)
{
    public bool IsAck => Type == "ack";

    public bool IsUnavailable => Code == ErrorCodes.Unavailable;
}

/// <summary>
/// A client that does what docs/protocol.md tells publishers to do: a stable <c>?client=</c>
/// identity, at most <c>window</c> publishes unacknowledged, every publish answered
/// <c>unavailable</c> sent again with the same id (after <c>resendDelay</c>), and after a dropped
/// connection a reconnect (to the next node) that sends every unacknowledged publish again. Message
/// i has id <c>{name}-{i}</c> and data <c>{"p":name,"i":i}</c>. Every answer is recorded, so a test
/// can check each one against the log.
/// </summary>
public sealed class RetryingPublisher(string name, string topic, Func<int, Uri> node, int window = 20,
    TimeSpan? resendDelay = null, Func<int, string?>? keyOf = null, TimeSpan? answerTimeout = null)
{
    /// <summary>
    /// A publish without any answer for this long is counted in <see cref="Unanswered"/> (the broker
    /// answers every request within request-timeout) and sent again, as a client with its own
    /// timeout would.
    /// </summary>
    private readonly TimeSpan _answerTimeout = answerTimeout ?? TimeSpan.FromSeconds(30);
    private readonly Lock _gate = new();
    private readonly List<PublishAnswer> _answers = [];
    private readonly Dictionary<int, string> _acked = [];
    private readonly Dictionary<int, DateTime> _firstSent = [];
    private readonly TimeSpan _resendDelay = resendDelay ?? TimeSpan.FromMilliseconds(200);

    public string Name => name;

    /// <summary>The client identity (<c>?client=</c>), the same across reconnects.</summary>
    public string ClientId { get; } = $"{name}-{Guid.NewGuid():N}";

    public int Connections { get; private set; }

    public int Resent { get; private set; }

    /// <summary>Publishes that got no answer within the answer timeout on a connection that stayed open (must be 0).</summary>
    public int Unanswered { get; private set; }

    /// <summary>Every answer so far, in arrival order.</summary>
    public List<PublishAnswer> Answers
    {
        get { lock (_gate) return [.. _answers]; }
    }

    /// <summary>Acknowledged messages: index → position.</summary>
    public Dictionary<int, string> Acked
    {
        get { lock (_gate) return new Dictionary<int, string>(_acked); }
    }

    public int AckedCount
    {
        get { lock (_gate) return _acked.Count; }
    }

    /// <summary>The first ack that arrived after <paramref name="time"/>, if any.</summary>
    public DateTime? FirstAckAfter(DateTime time)
    {
        lock (_gate) return _answers.FirstOrDefault(a => a.IsAck && a.At > time)?.At;
    }

    /// <summary>The first ack of a message first sent after <paramref name="time"/>, if any (an ack of an earlier message may have been on its way).</summary>
    public DateTime? FirstAckOfMessageSentAfter(DateTime time)
    {
        lock (_gate) return _answers.FirstOrDefault(a => a.IsAck && _firstSent.TryGetValue(a.Index, out var sent) && sent > time)?.At;
    }

    /// <summary>The data of message <paramref name="i"/> as the log holds it.</summary>
    public string DataOf(int i) => $$"""{"p":"{{name}}","i":{{i}}}""";

    /// <summary>
    /// Publishes messages 0 … <paramref name="count"/>-1 until every one is acknowledged, starting on
    /// node <paramref name="firstNode"/> (<c>node(n)</c> gives the URI of node n; a dropped connection
    /// moves to n + 1). <paramref name="paceEvery"/>: at most one new message per interval (null: as
    /// fast as the window allows).
    /// </summary>
    public async Task RunAsync(int count, int firstNode, CancellationToken ct, TimeSpan? paceEvery = null)
    {
        var unacked = new SortedSet<int>();
        var due = new SortedDictionary<DateTime, List<int>>();
        var sentAt = new Dictionary<int, DateTime>(); // sent on this connection, not answered yet
        var next = 0;
        var current = firstNode;
        var nextNew = DateTime.UtcNow;
        while (AckedCount < count)
        {
            ct.ThrowIfCancellationRequested();
            WsClient client;
            try
            {
                client = await WsClient.ConnectAsync(new Uri(node(current) + "?client=" + ClientId));
            }
            catch (Exception e) when (IsDrop(e) && !ct.IsCancellationRequested)
            {
                current++;
                await Task.Delay(200, ct);
                continue;
            }
            Connections++;
            async Task SendAsync(int i)
            {
                sentAt[i] = DateTime.UtcNow;
                await Send(client, i);
            }
            try
            {
                due.Clear();
                sentAt.Clear();
                foreach (var i in unacked)
                {
                    Resent++;
                    await SendAsync(i);
                }
                while (AckedCount < count)
                {
                    ct.ThrowIfCancellationRequested();
                    var now = DateTime.UtcNow;
                    while (unacked.Count < window && next < count && now >= nextNew)
                    {
                        unacked.Add(next);
                        await SendAsync(next++);
                        if (paceEvery is { } pace) nextNew = now + pace;
                    }
                    while (due.Count > 0 && due.First().Key <= now)
                    {
                        var (at, list) = due.First();
                        due.Remove(at);
                        foreach (var i in list.Where(unacked.Contains))
                        {
                            Resent++;
                            await SendAsync(i);
                        }
                    }
                    foreach (var (i, at) in sentAt.Where(kv => now - kv.Value > _answerTimeout).ToList())
                    {
                        Unanswered++;
                        Resent++;
                        await SendAsync(i);
                    }
                    var wakeAt = due.Count > 0 ? due.First().Key : now + TimeSpan.FromSeconds(1);
                    if (paceEvery is not null && next < count && unacked.Count < window && nextNew < wakeAt) wakeAt = nextNew;
                    var wait = wakeAt - now;
                    if (wait < TimeSpan.FromMilliseconds(1)) wait = TimeSpan.FromMilliseconds(1);
                    JsonObject f;
                    try
                    {
                        f = await client.ReceiveAsync(wait);
                    }
                    catch (TimeoutException)
                    {
                        continue; // time to send something
                    }
                    var answer = Record(f);
                    if (answer is null) continue;
                    sentAt.Remove(answer.Index);
                    if (answer.IsAck)
                    {
                        unacked.Remove(answer.Index);
                    }
                    else if (answer.IsUnavailable && unacked.Contains(answer.Index))
                    {
                        var at = DateTime.UtcNow + _resendDelay;
                        if (!due.TryGetValue(at, out var list)) due[at] = list = [];
                        list.Add(answer.Index);
                    }
                    else if (!answer.IsUnavailable)
                    {
                        throw new InvalidOperationException($"publisher {name}: unexpected answer {f.ToJsonString()}");
                    }
                }
            }
            catch (Exception e) when (IsDrop(e) && !ct.IsCancellationRequested)
            {
                current++; // reconnect elsewhere and send what is unacknowledged again
            }
            finally
            {
                await client.DisposeAsync();
            }
        }
    }

    private PublishAnswer? Record(JsonObject f)
    {
        var type = (string?)f["type"];
        if (type is not ("ack" or "error") || (string?)f["id"] is not { } id || !id.StartsWith(name + "-", StringComparison.Ordinal)) return null;
        var answer = new PublishAnswer(DateTime.UtcNow, int.Parse(id.AsSpan(name.Length + 1)), type, (string?)f["code"], (string?)f["message"], (string?)f["pos"]);
        lock (_gate)
        {
            _answers.Add(answer);
            if (answer.IsAck)
            {
                if (_acked.TryGetValue(answer.Index, out var before) && before != answer.Pos)
                    throw new InvalidOperationException($"publisher {name}: message {answer.Index} acknowledged at {before} and at {answer.Pos}");
                _acked[answer.Index] = answer.Pos!;
            }
        }
        return answer;
    }

    private Task Send(WsClient client, int i)
    {
        lock (_gate) _firstSent.TryAdd(i, DateTime.UtcNow);
        var request = new JsonObject { ["type"] = "publish", ["id"] = $"{name}-{i}", ["topic"] = topic, ["data"] = JsonNode.Parse(DataOf(i)) };
        if (keyOf?.Invoke(i) is { } key) request["key"] = key;
        return client.SendTextAsync(request.ToJsonString());
    }

    /// <summary>The connection is gone (the node died or closed it): reconnect.</summary>
    private static bool IsDrop(Exception e) =>
        e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException
        || (e is InvalidOperationException && e.Message.Contains("closed", StringComparison.Ordinal));
}
