using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;

namespace Broker.Soak.Clients;

/// <summary>
/// WebSocket connections the soak opens by hand, for what the client library (rightly) cannot do:
/// a socket with a tiny receive buffer (a slow reader the broker must close with 1013) and a frame
/// cut off in the middle (an aborted client).
/// </summary>
public static class RawWebSocket
{
    /// <summary>
    /// Connects to <paramref name="endpoint"/> with <paramref name="query"/>, performs the upgrade and
    /// returns the socket, positioned at the first WebSocket byte.
    /// </summary>
    public static async Task<Socket> UpgradeAsync(Uri endpoint, string query, int? receiveBuffer, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (receiveBuffer is { } size) socket.ReceiveBufferSize = size; // before connecting: it sets the window
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(endpoint.Host, endpoint.Port, timeout.Token);
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            await socket.SendAsync(UpgradeRequest(endpoint, query, key), SocketFlags.None, timeout.Token);
            var head = await ReadHeadAsync(socket, timeout.Token);
            if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
                throw new WebSocketException($"upgrade refused: {head.Split('\r')[0]}");
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
            if (!head.Contains(accept, StringComparison.Ordinal)) throw new WebSocketException("upgrade answered without the expected Sec-WebSocket-Accept");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static byte[] UpgradeRequest(Uri endpoint, string query, string key) => Encoding.ASCII.GetBytes(
        $"GET {endpoint.AbsolutePath}?{query} HTTP/1.1\r\nHost: {endpoint.Host}:{endpoint.Port}\r\nUpgrade: websocket\r\n" +
        $"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n");

    /// <summary>Reads the HTTP response head byte by byte, so that nothing after it is consumed.</summary>
    private static async Task<string> ReadHeadAsync(Socket socket, CancellationToken ct)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await socket.ReceiveAsync(one, SocketFlags.None, ct) == 0) throw new WebSocketException("closed during the upgrade");
            head.Append((char)one[0]);
            if (head.Length > 16 * 1024) throw new WebSocketException("upgrade response too long");
        }
        return head.ToString();
    }

    /// <summary>A client WebSocket over an upgraded socket (the framework's implementation does the frames).</summary>
    public static WebSocket Wrap(Socket socket) =>
        WebSocket.CreateFromStream(new NetworkStream(socket, ownsSocket: true), new WebSocketCreationOptions
        {
            IsServer = false,
            KeepAliveInterval = TimeSpan.Zero,
        });

    /// <summary>A masked client frame (RFC 6455 §5.2): text (opcode 1) or continuation (0), final or not.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> payload, bool fin = true, int opcode = 1)
    {
        var header = new List<byte> { (byte)((fin ? 0x80 : 0) | opcode) };
        if (payload.Length < 126) header.Add((byte)(0x80 | payload.Length));
        else if (payload.Length <= ushort.MaxValue)
        {
            header.Add(0x80 | 126);
            header.Add((byte)(payload.Length >> 8));
            header.Add((byte)payload.Length);
        }
        else
        {
            header.Add(0x80 | 127);
            for (var shift = 56; shift >= 0; shift -= 8) header.Add((byte)((long)payload.Length >> shift));
        }
        var mask = RandomNumberGenerator.GetBytes(4);
        header.AddRange(mask);
        var frame = new byte[header.Count + payload.Length];
        header.CopyTo(frame);
        for (var i = 0; i < payload.Length; i++) frame[header.Count + i] = (byte)(payload[i] ^ mask[i % 4]);
        return frame;
    }

    /// <summary>Closes with a TCP reset (no FIN, no close frame): what a crashed client or a cut network looks like.</summary>
    public static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception)
        {
            // already closed
        }
    }
}
