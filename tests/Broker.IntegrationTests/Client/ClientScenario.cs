using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Broker.Client;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests.Client;

/// <summary>
/// What the client scenarios share: publishers that publish <c>{"p":name,"i":i}</c> through a
/// <see cref="BrokerClient"/> with a window of unacknowledged publishes, readers that enumerate a
/// subscription, and the check of both against what the log holds.
/// </summary>
internal static class ClientScenario
{
    /// <summary>Reconnects quickly enough for tests, still with backoff and jitter.</summary>
    public static ReconnectOptions QuickReconnect => BrokerClients.QuickReconnect;

    public static string KeyOf(JsonElement data) => $"{data.GetProperty("p").GetString()}:{data.GetProperty("i").GetInt32()}";

    /// <summary>Records every state change of a client (for "the scenario happened" assertions).</summary>
    public sealed class States
    {
        private readonly ConcurrentQueue<BrokerStateChangedEventArgs> _all = new();

        public States(BrokerClient client) => client.StateChanged += (_, e) => _all.Enqueue(e);

        public IReadOnlyCollection<BrokerStateChangedEventArgs> All => _all;

        public int Disconnects(int? code = null) => _all.Count(e => e.State == BrokerConnectionState.Disconnected && (code is null || e.CloseCode == code));
    }

    /// <summary>Publishes <paramref name="count"/> messages with at most <paramref name="window"/> waiting for their ack.</summary>
    public sealed class Publisher(BrokerClient client, string topic, string name, int count, int window)
    {
        public string Name => name;
        public BrokerClient Client => client;
        public ConcurrentDictionary<int, string> Acked { get; } = new();

        public async Task RunAsync(Action onAck, CancellationToken ct)
        {
            using var gate = new SemaphoreSlim(window);
            var pending = new List<Task>(count);
            for (var i = 0; i < count; i++)
            {
                await gate.WaitAsync(ct);
                var n = i;
                pending.Add(Publish(n));
            }
            await Task.WhenAll(pending);

            async Task Publish(int n)
            {
                try
                {
                    var ack = await client.PublishAsync(topic, Encoding.UTF8.GetBytes($$"""{"p":"{{name}}","i":{{n}}}"""), cancellationToken: ct);
                    Acked[n] = ack.Pos;
                    onAck();
                }
                finally
                {
                    gate.Release();
                }
            }
        }
    }

    /// <summary>Enumerates a subscription until it has <paramref name="expected"/> messages; then checks that nothing more is buffered.</summary>
    public sealed class Reader(string name, BrokerClient client, BrokerSubscription subscription, int expected)
    {
        public string Name => name;
        public BrokerClient Client => client;
        public BrokerSubscription Subscription => subscription;
        public List<(string Pos, string Key)> Seen { get; } = [];
        public ConcurrentQueue<SubscriptionResumedEventArgs> Resumes { get; } = new();

        public async Task RunAsync(CancellationToken ct)
        {
            subscription.Resumed += (_, e) => Resumes.Enqueue(e);
            // Not disposed: a MoveNextAsync stays pending at the end (it ends when the client is disposed).
            var messages = subscription.GetAsyncEnumerator(ct);
            while (Seen.Count < expected)
            {
                Assert.True(await messages.MoveNextAsync(), $"{name}: the subscription ended after {Seen.Count} messages");
                Seen.Add((messages.Current.Pos, KeyOf(messages.Current.Data)));
            }
            // A duplicate would be buffered before the pong of a ping sent now.
            var next = messages.MoveNextAsync();
            await client.PingAsync(ct);
            Assert.False(next.IsCompleted, $"{name}: a message beyond the {expected} expected: {(next.IsCompleted && next.Result ? messages.Current.ToString() : "end")}");
        }
    }

    /// <summary>
    /// The log holds every publish exactly once, at the position its ack named, and every reader saw the
    /// log's publishes (those after its subscription started: here, all) once each, in log order.
    /// </summary>
    public static void AssertExactlyOnceInOrder(string bootstrap, string topic, IReadOnlyList<Publisher> publishers, IReadOnlyList<Reader> readers, int total)
    {
        var log = LogReadBack.All(bootstrap, topic)
            .Select(r => (r.Pos, Key: JsonDocument.Parse(r.Value).RootElement is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("p", out _) ? KeyOf(o) : null))
            .Where(r => r.Key is not null)
            .Select(r => (r.Pos, Key: r.Key!))
            .ToList();
        var twice = log.GroupBy(r => r.Key).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, $"written more than once: {string.Join(", ", twice.Take(20))}");
        Assert.Equal(total, log.Count);
        var posOfKey = log.ToDictionary(r => r.Key, r => r.Pos);
        foreach (var p in publishers)
        {
            foreach (var (i, pos) in p.Acked) Assert.Equal(posOfKey[$"{p.Name}:{i}"], pos);
        }
        foreach (var r in readers)
        {
            var index = log.Select((e, i) => (e.Pos, i)).ToDictionary(x => x.Pos, x => x.i);
            var last = -1;
            foreach (var (pos, key) in r.Seen)
            {
                Assert.True(index.TryGetValue(pos, out var at), $"{r.Name}: a position that is not in the log: {pos}");
                Assert.True(at > last, $"{r.Name}: {key} at log index {at} after index {last} (duplicate or out of order)");
                Assert.Equal(log[at].Key, key);
                last = at;
            }
            Assert.Equal(log, r.Seen);
            Assert.DoesNotContain(r.Resumes, e => e.Recovered == false);
        }
    }
}
