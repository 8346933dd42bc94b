using System.Net.WebSockets;
using System.Threading.Channels;

namespace Broker.Soak.Clients;

/// <summary>
/// A publisher that keeps every answer, to hold the broker to what an answer claims. It chooses its
/// ids (<c>&lt;seq&gt;.&lt;attempt&gt;</c>) with a stable client identity. After a dropped
/// connection it reconnects to the next node and resends what had no answer with the same ids;
/// after <c>unavailable</c> whose message says the outcome is unknown it resends the same id (as the
/// protocol asks). After any other refusal — a claim that nothing was stored — it publishes the same
/// message again under a new id, as an application that trusts the answer may: if the refused id
/// shows up in the log anyway, the answer was false (and the message is in the log twice).
/// </summary>
public sealed class ProbePublisher
{
    private readonly Lock _gate = new();
    private readonly List<Answer> _answers = [];
    private readonly Dictionary<string, long> _seqOf = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<Uri> _endpoints;
    private readonly int _window;
    private readonly int _padding;

    public ProbePublisher(string name, string clientId, string topic, IReadOnlyList<Uri> endpoints, int window, int padding)
    {
        Name = name;
        ClientId = clientId;
        Topic = topic;
        _endpoints = endpoints;
        _window = window;
        _padding = padding;
    }

    public string Name { get; }
    public string ClientId { get; }
    public string Topic { get; }
    public ConnectionStats Stats { get; } = new();

    /// <summary>Publishes sent again because no answer came within 30 s on an open connection.</summary>
    public int Unanswered { get; private set; }

    public List<Answer> Answers
    {
        get { lock (_gate) return [.. _answers]; }
    }

    /// <summary>Every publish (by sequence number) and ack.</summary>
    public PublishBook Book { get; } = new();

    /// <summary>The sequence number of one of its ids.</summary>
    public long SeqOf(string id)
    {
        lock (_gate) return _seqOf[id];
    }

    /// <summary>
    /// Publishes one message per <paramref name="pace"/> until <paramref name="stop"/>, then goes on
    /// until every message is acknowledged or <paramref name="abandon"/>.
    /// </summary>
    public async Task RunAsync(TimeSpan pace, CancellationToken stop, CancellationToken abandon)
    {
        var attempts = new Dictionary<long, int>();
        var open = new HashSet<long>();                       // issued, not acknowledged
        var unanswered = new Dictionary<string, double>(StringComparer.Ordinal); // sent, no answer yet: id → sent at
        var later = new PriorityQueue<(long Seq, string? SameId), double>();
        long next = 0;
        var due = Clock.Now;
        var endpoint = 0;

        string NewId(long seq)
        {
            var n = attempts.GetValueOrDefault(seq);
            attempts[seq] = n + 1;
            var id = $"{seq}.{n}";
            lock (_gate) _seqOf[id] = seq;
            return id;
        }

        async Task SendAsync(JsonSocket ws, string id, long seq)
        {
            unanswered[id] = Clock.Now;
            await ws.SendAsync(JsonSocket.Publish(id, Topic, Payload.Encode(new MsgId(Name, seq), _padding)), abandon);
        }

        while (!abandon.IsCancellationRequested && !(stop.IsCancellationRequested && open.Count == 0))
        {
            JsonSocket ws;
            try
            {
                ws = await JsonSocket.ConnectAsync(_endpoints[endpoint % _endpoints.Count], "client=" + ClientId, abandon);
            }
            catch (Exception) when (!abandon.IsCancellationRequested)
            {
                endpoint++;
                await Delay(200, abandon);
                continue;
            }
            var frames = Channel.CreateUnbounded<Answer?>();
            using var connection = CancellationTokenSource.CreateLinkedTokenSource(abandon);
            var reading = ReadAsync(ws, frames.Writer, connection.Token);
            try
            {
                foreach (var id in unanswered.Keys.ToList()) await SendAsync(ws, id, SeqOf(id));
                while (!(stop.IsCancellationRequested && open.Count == 0))
                {
                    abandon.ThrowIfCancellationRequested();
                    var now = Clock.Now;
                    while (!stop.IsCancellationRequested && open.Count < _window && now >= due)
                    {
                        var seq = next++;
                        open.Add(seq);
                        Book.Add(Topic, new MsgId(Name, seq));
                        await SendAsync(ws, NewId(seq), seq);
                        due += pace.TotalSeconds;
                        if (due < now - 1) due = now;
                    }
                    while (later.TryPeek(out var item, out var at) && at <= now)
                    {
                        later.Dequeue();
                        if (open.Contains(item.Seq)) await SendAsync(ws, item.SameId ?? NewId(item.Seq), item.Seq);
                    }
                    foreach (var (id, sent) in unanswered.Where(kv => now - kv.Value > 30).ToList())
                    {
                        Unanswered++;
                        await SendAsync(ws, id, SeqOf(id));
                    }
                    var wake = now + 0.5;
                    if (!stop.IsCancellationRequested && open.Count < _window) wake = Math.Min(wake, due);
                    if (later.TryPeek(out _, out var first)) wake = Math.Min(wake, first);
                    var answer = await NextAsync(frames.Reader, TimeSpan.FromSeconds(Math.Max(0.001, wake - Clock.Now)), abandon);
                    if (answer is null) continue;
                    if (answer.Id == "") throw new WebSocketException("connection ended");
                    long? answered;
                    lock (_gate) answered = _seqOf.TryGetValue(answer.Id, out var s) ? s : null;
                    if (answered is not { } aSeq) continue;
                    unanswered.Remove(answer.Id);
                    lock (_gate) _answers.Add(answer);
                    if (answer.IsAck && open.Contains(aSeq)) Book.Ack(Book[aSeq], answer.At, answer.Pos);
                    if (answer.IsAck) open.Remove(aSeq);
                    else if (open.Contains(aSeq)) later.Enqueue((aSeq, answer.IsUncertain ? answer.Id : null), Clock.Now + 0.5);
                }
            }
            catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException && !abandon.IsCancellationRequested)
            {
                Stats.Count(1006);
                endpoint++;
            }
            catch (OperationCanceledException)
            {
                // abandoned
            }
            finally
            {
                connection.Cancel();
                await ws.DisposeAsync();
                await reading;
            }
        }
    }

    private static async Task Delay(int ms, CancellationToken ct)
    {
        try { await Task.Delay(ms, ct); }
        catch (OperationCanceledException) { /* abandoned */ }
    }

    /// <summary>The next answer, null on timeout; an answer with an empty id means the connection ended.</summary>
    private static async Task<Answer?> NextAsync(ChannelReader<Answer?> reader, TimeSpan wait, CancellationToken ct)
    {
        if (reader.TryRead(out var ready)) return ready ?? new Answer(Clock.Now, "", null, null, null);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(wait);
        try
        {
            await reader.WaitToReadAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return null;
        }
        return reader.TryRead(out var a) ? a ?? new Answer(Clock.Now, "", null, null, null) : null;
    }

    private static async Task ReadAsync(JsonSocket ws, ChannelWriter<Answer?> frames, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                var f = await ws.ReceiveAsync(ct);
                if (Answer.From(f) is { } a) frames.TryWrite(a);
            }
        }
        catch (Exception)
        {
            frames.TryWrite(null); // the connection ended
        }
    }
}
