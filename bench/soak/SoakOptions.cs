using System.Globalization;

namespace Broker.Soak;

/// <summary>What a run does: the mode's defaults, overridden by the command line.</summary>
public sealed class SoakOptions
{
    public const string Usage = """
        usage: Broker.Soak [--mode short|long] [--minutes N] [--db sqlite|postgresql] [--pg CONNECTION]
                           [--db-fault cut|stop|none] [--pg-ctl "pg_ctlcluster 15 main"] [--seed N]
                           [--rate MSG_PER_S] [--out FILE.md] [--json FILE.json] [--work DIR] [--bin DIR]
          short (CI): one kill -9, one SIGTERM and one drain (each with a restart), one log pause (and a
                      database cut with PostgreSQL), client aborts, a slow reader, subscriber restarts; ~2 minutes
          long:       every kind of fault at random for --minutes (default 30)
          --db        postgresql when --pg, BROKER_SOAK_PG or BROKER_TEST_PG names one, else sqlite
          --pg        default: BROKER_SOAK_PG, else BROKER_TEST_PG
          --db-fault  cut (default): the soak's TCP proxy in front of PostgreSQL is cut; nobody else notices.
                      stop: PostgreSQL itself is stopped and started (--pg-ctl) — long mode only, and only
                      a dedicated server named by --pg or BROKER_SOAK_PG whose port --pg-ctl's cluster has
                      (the default in long mode when one is named); started again when the soak ends
          --out       default bench/results/soak-latest.md in the repository (./soak-latest.md elsewhere)
          exit code:  0 every "must be 0" is 0; 1 one is not; 2 bad arguments or the cluster did not start
        """;

    public string Mode { get; private set; } = "short";
    public bool Long => Mode == "long";
    public double Minutes { get; private set; } = 30;
    public string Db { get; private set; } = "";
    public string? Pg { get; private set; }
    public string DbFault { get; private set; } = "";
    public string PgCtl { get; private set; } = "pg_ctlcluster 15 main";
    public int Seed { get; private set; } = Random.Shared.Next(1, 1_000_000);
    public double Rate { get; private set; }
    public string? Out { get; private set; }
    public string? Json { get; private set; }
    public string? Work { get; private set; }
    public string Bin { get; private set; } = AppContext.BaseDirectory;

    /// <summary>Bytes of padding in each message's data (a record is about 60 bytes more).</summary>
    public int Padding => 100;

    /// <summary>Publishes each continuous publisher may have awaiting their ack.</summary>
    public int Window => 16;

    /// <summary>Single-partition topics soak.t0…; one more topic, soak.mp.k, has three partitions.</summary>
    public int Topics => 4;

    /// <summary>
    /// The burst that overflows a slow reader: this many topics of its own, each with
    /// <see cref="FireMessages"/> messages of <see cref="FirePadding"/> bytes — about 10 MB in all,
    /// more than the kernel's socket buffers and the broker's outbound buffer (4096 frames, 8 MiB)
    /// hold, and under the in-memory log's ~5 MB per partition.
    /// </summary>
    public int FireTopics => 4;

    public int FireMessages => 2500;

    public int FirePadding => 1000;

    public static SoakOptions Parse(string[] args)
    {
        var o = new SoakOptions();
        string? minutes = null, rate = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--mode": o.Mode = Value(); break;
                case "--minutes": minutes = Value(); break;
                case "--db": o.Db = Value(); break;
                case "--pg": o.Pg = Value(); break;
                case "--db-fault": o.DbFault = Value(); break;
                case "--pg-ctl": o.PgCtl = Value(); break;
                case "--seed": o.Seed = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--rate": rate = Value(); break;
                case "--out": o.Out = Value(); break;
                case "--json": o.Json = Value(); break;
                case "--work": o.Work = Value(); break;
                case "--bin": o.Bin = Value(); break;
                case "--help" or "-h": throw new ArgumentException("");
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        if (o.Mode is not ("short" or "long")) throw new ArgumentException("--mode is short or long");
        if (minutes is not null) o.Minutes = double.Parse(minutes, CultureInfo.InvariantCulture);
        if (o.Minutes <= 0) throw new ArgumentException("--minutes must be positive");
        o.Rate = rate is not null ? double.Parse(rate, CultureInfo.InvariantCulture) : o.Long ? 5 : 10;
        if (o.Rate <= 0 || o.Rate > 200) throw new ArgumentException("--rate is 0-200 messages per second per publisher");
        var testPg = Environment.GetEnvironmentVariable("BROKER_TEST_PG") is { Length: > 0 } t ? t : null;
        o.Pg ??= Environment.GetEnvironmentVariable("BROKER_SOAK_PG") is { Length: > 0 } soakPg ? soakPg : testPg;
        if (o.Db.Length == 0) o.Db = o.Pg is not null ? "postgresql" : "sqlite";
        if (o.Db is not ("sqlite" or "postgresql")) throw new ArgumentException("--db is sqlite or postgresql");
        if (o.Db == "postgresql" && o.Pg is null) throw new ArgumentException("PostgreSQL needs --pg, BROKER_SOAK_PG or BROKER_TEST_PG");
        // Stopping PostgreSQL stops it for everyone: never the tests' shared server (BROKER_TEST_PG,
        // which CI's parallel test classes use), never in short mode (CI), only a server named for the soak.
        var dedicated = o.Db == "postgresql" && (testPg is null || Cluster.Database.Server(o.Pg!) != Cluster.Database.Server(testPg));
        if (o.DbFault.Length == 0) o.DbFault = o.Long && dedicated ? "stop" : "cut";
        if (o.DbFault is not ("cut" or "stop" or "none")) throw new ArgumentException("--db-fault is cut, stop or none");
        if (o.DbFault == "stop")
        {
            if (!o.Long) throw new ArgumentException("--db-fault stop is for long mode only: the short mode (CI) shares its PostgreSQL with other tests and cuts the soak's own proxy instead");
            if (!dedicated) throw new ArgumentException("--db-fault stop stops the PostgreSQL server itself: name a dedicated one with --pg or BROKER_SOAK_PG (not the server of BROKER_TEST_PG)");
            Cluster.Database.CheckStoppable(o.Pg!, o.PgCtl);
        }
        // The in-memory log keeps about 5 MB per partition; a truncated partition cannot be checked.
        var perPartition = o.Rate * (o.Long ? o.Minutes * 60 : 300) * 200;
        if (perPartition > 4_000_000)
            throw new ArgumentException($"{o.Rate} msg/s for {o.Minutes} min is about {perPartition / 1e6:0.0} MB per topic, more than the in-memory log keeps (~5 MB per partition): lower --rate");
        if (!File.Exists(Path.Combine(o.Bin, "Broker.Server.dll")) || !File.Exists(Path.Combine(o.Bin, "Broker.DevKafka.dll")))
            throw new ArgumentException($"Broker.Server.dll and Broker.DevKafka.dll are not in {o.Bin} (--bin)");
        return o;
    }

    /// <summary>The repository's root when the soak runs from it (bench/soak/bin/...), else null.</summary>
    public static string? RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Broker.sln"))) return dir.FullName;
        }
        return null;
    }
}
