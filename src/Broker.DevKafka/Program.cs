// Dev-only Kafka-protocol log: librdkafka's in-memory mock cluster on a fixed port.
// Usage: dotnet run --project src/Broker.DevKafka [--host 127.0.0.1] [--port 9092] [--admin-port 10092] [--partitions 1]
//        (the port may also come from BROKER_DEVKAFKA_PORT; 0 picks a free port; the admin port,
//        default port + 1000 or free when port is 0, creates topics for brokers: topic-creation = devkafka;
//        --partitions: of topics a Kafka client such as kcat writes to first, as the brokers' broker.kafka.partitions)
using System.Runtime.InteropServices;
using Broker.DevKafka;

var host = "127.0.0.1";
var port = int.TryParse(Environment.GetEnvironmentVariable("BROKER_DEVKAFKA_PORT"), out var envPort) ? envPort : 9092;
int? adminPort = null;
var partitions = 1;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--host" when i + 1 < args.Length: host = args[++i]; break;
        case "--port" when i + 1 < args.Length && int.TryParse(args[i + 1], out var p): port = p; i++; break;
        case "--admin-port" when i + 1 < args.Length && int.TryParse(args[i + 1], out var a): adminPort = a; i++; break;
        case "--partitions" when i + 1 < args.Length && int.TryParse(args[i + 1], out var n) && n >= 1: partitions = n; i++; break;
        default:
            Console.Error.WriteLine($"Unknown or incomplete argument '{args[i]}'. Usage: [--host 127.0.0.1] [--port 9092] [--admin-port 10092] [--partitions 1]");
            return 2;
    }
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });

MockKafkaCluster cluster;
try
{
    cluster = MockKafkaCluster.Start(host, port, autoCreatePartitions: partitions);
}
catch (System.Net.Sockets.SocketException e)
{
    Console.Error.WriteLine($"Cannot listen on {host}:{port}: {e.Message} (is a Kafka already running? --port moves this one)");
    return 2;
}

using (cluster)
using (var admin = new AdminEndpoint(cluster, host, adminPort ?? (port == 0 ? 0 : port + 1000)))
{
    Console.WriteLine($"Kafka-protocol log listening on {cluster.BootstrapServers} (bootstrap.servers)");
    Console.WriteLine($"Topic creation endpoint on {admin.Address} (broker.kafka.devkafka-admin)");
    Console.WriteLine("WARNING: DEV ONLY - messages are kept in memory only and are LOST when this process stops.");
    stop.Token.WaitHandle.WaitOne();
    Console.WriteLine("Stopping the Kafka-protocol log.");
}
return 0;
