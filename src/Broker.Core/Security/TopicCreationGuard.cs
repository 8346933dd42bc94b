using System.Collections.Concurrent;
using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.Protocol;
using Confluent.Kafka;

namespace Broker.Core.Security;

/// <summary>
/// Runs before a subscribe or publish may create a Kafka topic (namespaces with <c>create</c>): a
/// topic this node knows to exist passes at once; otherwise the cluster's topic list (one metadata
/// query shared by concurrent callers, at most one per <c>kafka.topic-list-max-age</c>) says whether it exists. A new name
/// that collides in Kafka with an existing topic (<c>a.b</c> and <c>a_b</c>: Kafka refuses topics
/// that differ only in '.' and '_') is refused with <c>bad_request</c>, and creating it counts
/// against the subject's <c>topic-creations-per-minute</c>. Names created concurrently on other
/// nodes are caught by Kafka itself (its CreateTopics refuses the second).
/// </summary>
public sealed class TopicCreationGuard : IDisposable
{
    private readonly KafkaSettings _settings;
    private readonly Quotas _quotas;
    private readonly Lazy<IAdminClient> _admin;
    private readonly ConcurrentDictionary<string, string> _byKey = new(StringComparer.Ordinal); // collision key → name
    private readonly Lock _sync = new();
    private Task<HashSet<string>>? _listing;
    private long _listedAt = long.MinValue;

    public TopicCreationGuard(KafkaSettings settings, Quotas quotas, KafkaClientLog? clientLog = null)
    {
        _settings = settings;
        _quotas = quotas;
        _admin = new Lazy<IAdminClient>(() => new AdminClientBuilder(KafkaLog.WithClientConfig(new AdminClientConfig { BootstrapServers = settings.BootstrapServers }, settings)).WithLog(clientLog).Build());
    }

    /// <summary>Null when the topic exists or may be created by <paramref name="who"/>, else the error.</summary>
    public async ValueTask<ProtocolError?> CheckAsync(string topic, TopicMapping mapping, ClientIdentity who)
    {
        var name = mapping.KafkaTopic;
        var key = KafkaTopicNames.CollisionKey(name);
        if (!mapping.Create || (_byKey.TryGetValue(key, out var known) && known == name)) return null;
        var existing = await ListAsync().ConfigureAwait(false);
        if (existing.Contains(name)) return null;
        if (_byKey.TryGetValue(key, out var other) && other != name)
            return new ProtocolError(ErrorCodes.BadRequest, $"topic {topic} (Kafka topic {name}) collides with the existing Kafka topic {other}: Kafka treats '.' and '_' alike");
        if (_quotas.TopicCreation(who.Partition) is { } limited) return limited;
        var winner = _byKey.GetOrAdd(key, name);
        return winner == name ? null
            : new ProtocolError(ErrorCodes.BadRequest, $"topic {topic} (Kafka topic {name}) collides with the Kafka topic {winner}: Kafka treats '.' and '_' alike");
    }

    private Task<HashSet<string>> ListAsync()
    {
        lock (_sync)
        {
            if (_listing is { IsCompleted: false } running) return running;
            if (_listing is { IsCompletedSuccessfully: true } done && Environment.TickCount64 - _listedAt < _settings.TopicListMaxAge.TotalMilliseconds) return done;
            _listedAt = Environment.TickCount64;
            // A blocking client call: on a thread of its own, never on the pool.
            return _listing = Task.Factory.StartNew(() =>
            {
                var names = _admin.Value.GetMetadata(_settings.QueryTimeout).Topics
                    .Where(t => !t.Error.IsError || t.Error.Code == ErrorCode.NoError)
                    .Select(t => t.Topic)
                    .ToHashSet(StringComparer.Ordinal);
                foreach (var n in names) _byKey.TryAdd(KafkaTopicNames.CollisionKey(n), n);
                return names;
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
    }

    public void Dispose()
    {
        if (_admin.IsValueCreated) _admin.Value.Dispose();
    }
}
