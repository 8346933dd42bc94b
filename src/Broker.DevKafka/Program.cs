// Dev-only Kafka-protocol log: librdkafka's in-memory mock cluster on a fixed port.
// Usage: dotnet run --project src/Broker.DevKafka [--host 127.0.0.1] [--port 9092]
//        (the port may also come from BROKER_DEVKAFKA_PORT; 0 picks a free port)
using System.Runtime.InteropServices;
using Broker.DevKafka;

var host = "127.0.0.1";
var port = int.TryParse(Environment.GetEnvironmentVariable("BROKER_DEVKAFKA_PORT"), out var envPort) ? envPort : 9092;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--host" when i + 1 < args.Length: host = args[++i]; break;
        case "--port" when i + 1 < args.Length && int.TryParse(args[i + 1], out var p): port = p; i++; break;
        default:
            Console.Error.WriteLine($"Unknown or incomplete argument '{args[i]}'. Usage: [--host 127.0.0.1] [--port 9092]");
            return 2;
    }
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });

MockKafkaCluster cluster;
try
{
    cluster = MockKafkaCluster.Start(host, port);
}
catch (System.Net.Sockets.SocketException e)
{
    Console.Error.WriteLine($"Cannot listen on {host}:{port}: {e.Message}");
    return 1;
}

using (cluster)
{
    Console.WriteLine($"Kafka-protocol log listening on {cluster.BootstrapServers} (bootstrap.servers)");
    Console.WriteLine("WARNING: DEV ONLY - messages are kept in memory only and are LOST when this process stops.");
    stop.Token.WaitHandle.WaitOne();
    Console.WriteLine("Stopping the Kafka-protocol log.");
}
return 0;
