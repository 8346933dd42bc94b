using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using Broker.Core.Topics;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Cluster;
using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.Server.Configuration;
using Confluent.Kafka;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Broker.Server.Admin;

/// <summary>
/// Readiness of a node: it is Up in the cluster, Kafka answers a metadata query and the session
/// store answers <c>SELECT 1</c>. The two remote checks are cached (<see cref="HealthSettings.CacheFor"/>)
/// so that a probe every second costs at most one query each per cache period.
/// </summary>
public sealed class ReadinessProbe(KafkaSettings kafka, HealthSettings health, string provider, string sessionStore, KafkaClientLog? clientLog = null) : IDisposable
{
    private TimeSpan CheckTimeout => health.CheckTimeout;
    private readonly Cached _kafka = new(health.CacheFor);
    private readonly Cached _store = new(health.CacheFor);
    private IAdminClient? _admin;

    public async Task<(bool Ready, JsonObject Body)> CheckAsync(ActorSystem system)
    {
        var self = Cluster.Get(system).SelfMember.Status;
        var clusterOk = self == MemberStatus.Up;
        var kafkaProblem = await _kafka.GetAsync(CheckKafka);
        var storeProblem = await _store.GetAsync(CheckStore);
        var body = new JsonObject
        {
            ["cluster"] = clusterOk ? "ok" : $"self is {self}, not Up",
            ["kafka"] = kafkaProblem ?? "ok",
            ["sessionStore"] = storeProblem ?? "ok",
        };
        var ready = clusterOk && kafkaProblem is null && storeProblem is null;
        body["ready"] = ready;
        return (ready, body);
    }

    private string? CheckKafka()
    {
        try
        {
            _admin ??= new AdminClientBuilder(Broker.Core.Log.KafkaLog.WithClientConfig(new AdminClientConfig
            {
                BootstrapServers = kafka.BootstrapServers,
                SocketTimeoutMs = (int)CheckTimeout.TotalMilliseconds,
            }, kafka)).WithLog(clientLog).Build();
            var md = _admin.GetMetadata(CheckTimeout);
            return md.Brokers.Count == 0 ? "no Kafka broker in the metadata" : null;
        }
        catch (KafkaException e)
        {
            return $"Kafka metadata query failed: {e.Error.Reason}";
        }
    }

    private string? CheckStore()
    {
        try
        {
            using var db = provider == "postgresql"
                ? (System.Data.Common.DbConnection)new NpgsqlConnection(new NpgsqlConnectionStringBuilder(sessionStore) { Timeout = (int)CheckTimeout.TotalSeconds }.ConnectionString)
                : new SqliteConnection(sessionStore);
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT 1";
            cmd.CommandTimeout = (int)CheckTimeout.TotalSeconds;
            cmd.ExecuteScalar();
            return null;
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or ArgumentException or TimeoutException)
        {
            return $"session store ({provider}) unreachable: {e.Message}";
        }
    }

    public void Dispose() => _admin?.Dispose();

    /// <summary>One check's last answer, refreshed (once at a time, off the request thread) when older than <paramref name="cacheFor"/>.</summary>
    private sealed class Cached(TimeSpan cacheFor)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private long _at;
        private string? _problem;
        private bool _has;

        public async Task<string?> GetAsync(Func<string?> check)
        {
            if (_has && Stopwatch.GetElapsedTime(Volatile.Read(ref _at)) < cacheFor) return _problem;
            await _gate.WaitAsync();
            try
            {
                if (_has && Stopwatch.GetElapsedTime(_at) < cacheFor) return _problem;
                // A blocking client call: on a thread of its own, never on the pool.
                _problem = await Task.Factory.StartNew(check, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                _at = Stopwatch.GetTimestamp();
                _has = true;
                return _problem;
            }
            finally
            {
                _gate.Release();
            }
        }
    }
}

/// <summary>/healthz and /readyz on the main port.</summary>
public static class HealthEndpoints
{
    public static void MapHealth(this WebApplication app)
    {
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", async (ReadinessProbe probe, ActorSystem system) =>
        {
            var (ready, body) = await probe.CheckAsync(system);
            return Results.Content(body.ToJsonString(), "application/json", statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
    }
}
