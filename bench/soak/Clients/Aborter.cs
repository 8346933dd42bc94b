using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;

namespace Broker.Soak.Clients;

/// <summary>
/// Clients that die in the middle of a frame. An episode opens a raw connection with a stable
/// client identity, sends a few complete publishes and then part of one more frame (cut inside its
/// header, inside its payload, or after the first fragment of a fragmented message — or the
/// connection is cut inside the HTTP upgrade), and ends the socket with a reset or a bare FIN.
/// Then, as the restarted client would, it connects to some node with the same identity and resends
/// every publish it had not seen acknowledged with the same id and data — except, in one episode of
/// three, the cut-off one, which then must never appear in the log.
/// </summary>
public sealed class Aborter(string name, string clientId, int padding)
{
    private static readonly string[] Variants = ["header", "payload", "fragment", "upgrade"];

    private readonly Lock _gate = new();
    private readonly List<PublishRecord> _records = [];
    private readonly List<(string Id, string Topic)> _neverCompleted = [];

    public string Name { get; } = name;
    public string ClientId { get; } = clientId;
    public int Episodes { get; private set; }

    public List<PublishRecord> Records
    {
        get { lock (_gate) return [.. _records]; }
    }

    /// <summary>Ids of publishes whose frame was cut off and never sent again: none may be in the log.</summary>
    public List<(string Id, string Topic)> NeverCompleted
    {
        get { lock (_gate) return [.. _neverCompleted]; }
    }

    public async Task<string> EpisodeAsync(Random rng, Uri node, IReadOnlyList<Uri> resendTo, string topic, CancellationToken ct)
    {
        var n = ++Episodes;
        var variant = Variants[rng.Next(Variants.Length)];
        var reset = rng.Next(2) == 0;
        if (variant == "upgrade")
        {
            using var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await raw.ConnectAsync(node.Host, node.Port, ct);
            var request = RawWebSocket.UpgradeRequest(node, "client=" + ClientId, Convert.ToBase64String(new byte[16]));
            await raw.SendAsync(request.AsMemory(0, rng.Next(1, request.Length - 1)), SocketFlags.None, ct);
            Close(raw, reset);
            return $"cut inside the upgrade request, {(reset ? "reset" : "FIN")}";
        }

        var complete = rng.Next(0, 4);
        var publishes = new List<(string Id, MsgId Msg, byte[] Frame)>();
        for (var j = 0; j <= complete; j++)
        {
            var msg = new MsgId(Name, n * 10L + (j == complete ? 9 : j));
            var id = j == complete ? $"e{n}.cut" : $"e{n}.{j}";
            publishes.Add((id, msg, Encoding.UTF8.GetBytes(JsonSocket.Publish(id, topic, Payload.Encode(msg, padding)))));
        }
        var socket = await RawWebSocket.UpgradeAsync(node, "client=" + ClientId, null, ct);
        try
        {
            foreach (var p in publishes.Take(complete)) await socket.SendAsync(RawWebSocket.Frame(p.Frame), SocketFlags.None, ct);
            var cut = publishes[complete].Frame;
            byte[] partial;
            switch (variant)
            {
                case "header":
                    var frame = RawWebSocket.Frame(cut);
                    partial = frame[..rng.Next(1, 6)]; // inside the length or the mask
                    break;
                case "payload":
                    var whole = RawWebSocket.Frame(cut);
                    var headerLength = whole.Length - cut.Length;
                    partial = whole[..(headerLength + rng.Next(1, cut.Length))];
                    break;
                default: // fragment: the first fragment complete, the rest never sent
                    partial = RawWebSocket.Frame(cut.AsSpan(0, cut.Length / 2), fin: false);
                    break;
            }
            await socket.SendAsync(partial, SocketFlags.None, ct);
        }
        finally
        {
            Close(socket, reset);
        }

        var resendCut = rng.Next(3) != 0;
        if (!resendCut)
        {
            publishes.RemoveAt(complete);
            lock (_gate) _neverCompleted.Add(($"e{n}.cut", topic));
        }
        var records = publishes.ToDictionary(p => p.Id, p => new PublishRecord(topic, p.Msg, Clock.Now));
        var resending = ResendAsync(publishes, records, resendTo, rng.Next(resendTo.Count), ct);
        lock (_gate)
        {
            _records.AddRange(records.Values);
            _resends.Add(resending);
        }
        return $"{complete} publish(es) then a frame cut inside its {variant}, {(reset ? "reset" : "FIN")}; " +
               $"resending {publishes.Count} with the same ids{(resendCut ? "" : " (not the cut one)")}";
    }

    private readonly List<Task<int>> _resends = [];

    /// <summary>Waits (bounded) for the resends still under way.</summary>
    public async Task FlushAsync(TimeSpan timeout)
    {
        Task[] resends;
        lock (_gate) resends = [.. _resends];
        try { await Task.WhenAll(resends).WaitAsync(timeout); }
        catch (TimeoutException) { /* counted as unanswered */ }
    }

    private static void Close(Socket socket, bool reset)
    {
        if (reset)
        {
            RawWebSocket.Reset(socket);
            return;
        }
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // already gone
        }
        socket.Dispose();
    }

    /// <summary>
    /// Resends until each is acknowledged (same id and data), moving to the next node when a
    /// connection drops; gives up after 150 s (longer than any outage the soak should cause).
    /// </summary>
    private async Task<int> ResendAsync(List<(string Id, MsgId Msg, byte[] Frame)> publishes, Dictionary<string, PublishRecord> records,
        IReadOnlyList<Uri> nodes, int first, CancellationToken ct)
    {
        var pending = publishes.ToDictionary(p => p.Id, p => Encoding.UTF8.GetString(p.Frame));
        await Task.Yield();
        var deadline = Clock.Now + 150;
        for (var attempt = first; pending.Count > 0 && Clock.Now < deadline && !ct.IsCancellationRequested; attempt++)
        {
            try
            {
                await using var ws = await JsonSocket.ConnectAsync(nodes[attempt % nodes.Count], "client=" + ClientId, ct);
                foreach (var frame in pending.Values) await ws.SendAsync(frame, ct);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(Math.Max(1, deadline - Clock.Now)));
                while (pending.Count > 0)
                {
                    if (Answer.From(await ws.ReceiveAsync(timeout.Token)) is not { } a || !pending.ContainsKey(a.Id)) continue;
                    if (a.IsAck)
                    {
                        lock (_gate)
                        {
                            records[a.Id].AckAt = a.At;
                            records[a.Id].AckPos = a.Pos;
                        }
                        pending.Remove(a.Id);
                    }
                    else if (a.Code is "unavailable" or "overloaded" or "rate_limited")
                    {
                        await Task.Delay(500, timeout.Token);
                        await ws.SendAsync(pending[a.Id], timeout.Token);
                    }
                    else
                    {
                        lock (_gate) records[a.Id].Error = $"{a.Code}: {a.Message}";
                        pending.Remove(a.Id);
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                await Task.Delay(300, ct);
            }
        }
        return publishes.Count - pending.Count;
    }
}
