using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Broker.DevKafka;

/// <summary>
/// The mock cluster does not implement Kafka's CreateTopics API, so a standalone DevKafka process
/// offers topic creation on a tiny loopback line protocol: the client sends
/// <c>CREATE &lt;topic&gt; &lt;partitions&gt;\n</c> and gets <c>OK\n</c> or <c>ERR &lt;reason&gt;\n</c>.
/// Brokers configured with <c>topic-creation = devkafka</c> use it. Dev and test only.
/// </summary>
public sealed class AdminEndpoint : IDisposable
{
    private readonly TcpListener _listener;
    private readonly MockKafkaCluster _cluster;
    private readonly CancellationTokenSource _stop = new();

    public AdminEndpoint(MockKafkaCluster cluster, string host, int port)
    {
        _cluster = cluster;
        _listener = new TcpListener(IPAddress.Parse(host), port);
        _listener.Start();
        Address = $"{host}:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _ = AcceptLoop();
    }

    /// <summary>host:port of the endpoint.</summary>
    public string Address { get; }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Serve(client);
        }
    }

    private async Task Serve(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.UTF8, leaveOpen: true);
                await using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { AutoFlush = true, NewLine = "\n" };
                while (await reader.ReadLineAsync(_stop.Token) is { } line)
                    await writer.WriteLineAsync(Handle(line));
            }
            catch (Exception) { /* client went away */ }
        }
    }

    private string Handle(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts is ["CREATE", var topic, var p] && int.TryParse(p, out var partitions) && partitions > 0)
        {
            try
            {
                _cluster.CreateTopic(topic, partitions);
                return "OK";
            }
            catch (Exception e)
            {
                return "ERR " + e.Message.ReplaceLineEndings(" ");
            }
        }
        return "ERR usage: CREATE <topic> <partitions>";
    }

    /// <summary>Creates a topic through a DevKafka admin endpoint at <paramref name="address"/> (host:port).</summary>
    public static async Task CreateTopicAsync(string address, string topic, int partitions, CancellationToken ct)
    {
        var colon = address.LastIndexOf(':');
        using var client = new TcpClient();
        await client.ConnectAsync(address[..colon], int.Parse(address[(colon + 1)..]), ct);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes($"CREATE {topic} {partitions}\n"), ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var answer = await reader.ReadLineAsync(ct);
        if (answer != "OK") throw new InvalidOperationException($"DevKafka could not create {topic}: {answer}");
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
