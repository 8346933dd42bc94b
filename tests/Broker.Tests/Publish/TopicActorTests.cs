using Broker.Core.Connections;
using Broker.Core.Publish;
using Broker.Core.Replay;
using Broker.Core.Fanout;
using System.Text;
using Akka.Actor;
using Broker.Core.Log;
using Broker.Core.Settings;
using Broker.Core.Topics;
using Broker.DevKafka;
using Broker.Protocol;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Publish;

public sealed class TopicActorTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(20);

    private readonly MockKafkaCluster _cluster = MockKafkaCluster.Start("127.0.0.1", 0);
    private KafkaLog? _log;

    private IActorRef StartTopic(string topic, TimeSpan? produceTimeout = null)
    {
        var settings = TestDefaults.Kafka(_cluster.BootstrapServers) with
        {
            TopicPrefix = "bk.",
            ProduceTimeout = produceTimeout ?? TestDefaults.Kafka().ProduceTimeout,
        };
        _log ??= new KafkaLog(settings, new MockClusterProvisioner(_cluster));
        _reader ??= new CatchUpReader(settings);
        return Sys.ActorOf(TopicActor.Props(topic, new TopicDependencies(_log, _reader, TestDefaults.Topics)));
    }

    private CatchUpReader? _reader;

    private static TopicCommands.Publish Publish(string topic, string json, string? key = null) =>
        new(topic, Encoding.UTF8.GetBytes(json), key, "client", null);

    private static long OffsetOf(string pos)
    {
        Assert.True(Position.TryParse(pos, out var p), pos);
        Assert.Equal(1, p.PartitionCount);
        return p.NextOffset(0) - 1;
    }

    [Fact]
    public void Publish_is_acknowledged_with_the_position_after_the_record_and_the_record_is_in_kafka()
    {
        var topic = StartTopic("orders");
        var data = """{"n":1,"s":"café"}""";
        topic.Tell(Publish("orders", data, key: "customer-7"), TestActor);
        var ack = ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
        Assert.Equal("orders", ack.Topic);
        Assert.Equal(0, OffsetOf(ack.Pos));

        topic.Tell(Publish("orders", "[2]"), TestActor);
        Assert.Equal(1, OffsetOf(ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos));

        var records = KafkaRead.From(_cluster.BootstrapServers, "bk.orders", 0, 2);
        var first = records[0].Message;
        Assert.Equal(Encoding.UTF8.GetBytes(data), first.Value);
        Assert.Equal("customer-7"u8.ToArray(), first.Key);
        Assert.True(first.Headers.TryGetLastBytes(KafkaLog.ContentTypeHeader, out var ct));
        Assert.Equal("json"u8.ToArray(), ct);
        Assert.Equal("[2]"u8.ToArray(), records[1].Message.Value);
        Assert.Null(records[1].Message.Key);
    }

    [Fact]
    public void Pipelined_publishes_are_acknowledged_in_order()
    {
        const int count = 100;
        var topic = StartTopic("burst");
        for (var i = 0; i < count; i++) topic.Tell(Publish("burst", $$"""{"i":{{i}}}"""), TestActor);

        var offsets = new List<long>();
        for (var i = 0; i < count; i++) offsets.Add(OffsetOf(ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos));
        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), offsets);

        // Ack i names the record of publish i.
        var records = KafkaRead.From(_cluster.BootstrapServers, "bk.burst", 0, count);
        for (var i = 0; i < count; i++)
        {
            Assert.Equal(offsets[i], records[i].Offset.Value);
            Assert.Equal(Encoding.UTF8.GetBytes($$"""{"i":{{i}}}"""), records[i].Message.Value);
        }
    }

    [Fact]
    public void With_the_broker_down_a_publish_is_rejected_as_unavailable_and_succeeds_again_after_it_is_up()
    {
        var topic = StartTopic("flaky", produceTimeout: TimeSpan.FromSeconds(2));
        topic.Tell(Publish("flaky", "\"before\""), TestActor);
        Assert.Equal(0, OffsetOf(ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos));

        _cluster.SetBrokerDown();
        topic.Tell(Publish("flaky", "\"while-down\""), TestActor);
        var rejected = ExpectMsg<TopicCommands.PublishRejected>(AckTimeout);
        Assert.Equal(("flaky", ErrorCodes.Unavailable), (rejected.Topic, rejected.Code));
        Assert.False(string.IsNullOrEmpty(rejected.Message));
        ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // exactly one answer: no late ack

        _cluster.SetBrokerUp();
        // The producer reconnects with backoff: retry until a publish is acknowledged (each attempt answers within the produce timeout).
        TopicCommands.PublishAck? ack = null;
        AwaitCondition(() =>
        {
            topic.Tell(Publish("flaky", "\"after\""), TestActor);
            var reply = ExpectMsg<object>(AckTimeout);
            if (reply is TopicCommands.PublishAck a) ack = a;
            else Assert.Equal(ErrorCodes.Unavailable, Assert.IsType<TopicCommands.PublishRejected>(reply).Code);
            return ack is not null;
        }, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));

        var offset = OffsetOf(ack!.Pos);
        Assert.True(offset >= 1, $"offset {offset}");
        Assert.Equal("\"after\""u8.ToArray(), KafkaRead.From(_cluster.BootstrapServers, "bk.flaky", offset, 1)[0].Message.Value);

        // And the next publish is acknowledged right after it.
        topic.Tell(Publish("flaky", "\"next\""), TestActor);
        Assert.Equal(offset + 1, OffsetOf(ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos));
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing); // stops the actor system first
        if (!disposing) return;
        _reader?.Dispose();
        _log?.Dispose();
        _cluster.Dispose();
    }

    [Fact]
    public void A_retry_with_the_same_client_and_id_gets_the_original_ack_even_from_a_new_actor_that_rebuilt_its_window_from_the_log()
    {
        var topic = StartTopic("dedup");
        var publish = new TopicCommands.Publish("dedup", "{\"v\":1}"u8.ToArray(), null, "client-a", "req-1");
        topic.Tell(publish, TestActor);
        var first = ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
        Assert.False(first.Duplicate);
        topic.Tell(publish, TestActor);
        var again = ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
        Assert.True(again.Duplicate);
        Assert.Equal(first.Pos, again.Pos);

        // The topic moves: a new actor on (possibly) another node knows the publish from the log's headers.
        Watch(topic);
        Sys.Stop(topic);
        ExpectTerminated(topic, AckTimeout);
        var moved = StartTopic("dedup");
        moved.Tell(publish, TestActor);
        var afterMove = ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
        Assert.True(afterMove.Duplicate);
        Assert.Equal(first.Pos, afterMove.Pos);

        // Another client's request with the same id is a new message.
        moved.Tell(publish with { ClientId = "client-b" }, TestActor);
        Assert.NotEqual(first.Pos, ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos);
        Assert.Equal(2, KafkaRead.From(_cluster.BootstrapServers, "bk.dedup", 0, 2).Count);
    }

    [Fact]
    public async Task On_a_multi_partition_topic_acks_name_each_records_partition_and_retries_after_a_move_get_a_position_that_skips_nothing()
    {
        _cluster.CreateTopic("bk.mp", 4);
        var topic = StartTopic("mp");
        string[] keys = [.. Enumerable.Range(0, 12).Select(i => $"key-{i}")];
        var publishes = keys.Select((k, i) => new TopicCommands.Publish("mp", Encoding.UTF8.GetBytes($$"""{"i":{{i}}}"""), k, "client-a", $"req-{i}")).ToList();
        // Delivery reports (and so acks) keep the order within a partition only: one probe per publish.
        var probes = publishes.Select(_ => CreateTestProbe()).ToList();
        for (var i = 0; i < publishes.Count; i++) topic.Tell(publishes[i], probes[i].Ref);
        var acks = probes.Select(p => p.ExpectMsg<TopicCommands.PublishAck>(AckTimeout)).ToList();

        var records = KafkaRead.All(_cluster.BootstrapServers, "bk.mp", 4, publishes.Count);
        var heads = (await _log!.QueryHeadsAsync("bk.mp")).High;
        Assert.Equal(publishes.Count, heads.Sum()); // each written once
        Assert.True(heads.Count(c => c > 0) > 1, "the keys should spread over several partitions");
        for (var i = 0; i < publishes.Count; i++)
        {
            // Each ack names its record: offset + 1 in the record's partition; in the others at most
            // what the log holds.
            var record = records.Single(r => r.Message.Key.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(keys[i])));
            Assert.True(Position.TryParse(acks[i].Pos, out var pos));
            Assert.Equal(4, pos.PartitionCount);
            for (var p = 0; p < 4; p++)
            {
                if (p == record.Partition.Value) Assert.Equal(record.Offset.Value + 1, pos.NextOffset(p));
                else Assert.InRange(pos.NextOffset(p), 0, heads[p]);
            }
        }

        Watch(topic);
        Sys.Stop(topic);
        ExpectTerminated(topic, AckTimeout);
        var moved = StartTopic("mp");
        for (var i = 0; i < publishes.Count; i++)
        {
            moved.Tell(publishes[i], TestActor);
            var again = ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
            Assert.True(again.Duplicate);
            Assert.True(Position.TryParse(again.Pos, out var recovered));
            Assert.True(Position.TryParse(acks[i].Pos, out var original));
            var own = records.Single(r => r.Message.Key.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(keys[i]))).Partition.Value;
            for (var p = 0; p < 4; p++)
            {
                if (p == own) Assert.Equal(original.NextOffset(p), recovered.NextOffset(p));
                else Assert.True(recovered.NextOffset(p) <= original.NextOffset(p), $"partition {p}: {recovered.NextOffset(p)} > {original.NextOffset(p)}");
            }
        }
        Assert.Equal(heads, (await _log!.QueryHeadsAsync("bk.mp")).High); // the retries wrote nothing
    }

    [Fact]
    public void A_reused_id_with_other_data_or_key_is_refused_as_conflict_and_never_written_even_after_a_move()
    {
        var topic = StartTopic("conflict");
        var first = new TopicCommands.Publish("conflict", "\"hello\""u8.ToArray(), null, "client-a", "1");
        topic.Tell(first, TestActor);
        var ack = ExpectMsg<TopicCommands.PublishAck>(AckTimeout);

        topic.Tell(first with { Data = "\"second message\""u8.ToArray() }, TestActor);
        Assert.Equal(ErrorCodes.Conflict, ExpectMsg<TopicCommands.PublishRejected>(AckTimeout).Code);
        topic.Tell(first with { Key = "k" }, TestActor);
        Assert.Equal(ErrorCodes.Conflict, ExpectMsg<TopicCommands.PublishRejected>(AckTimeout).Code);
        topic.Tell(first, TestActor); // the real retry still gets its ack
        Assert.Equal(ack.Pos, ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos);

        // A new writer knows the fingerprint from the record it reads back.
        Watch(topic);
        topic.Tell(TopicActor.Stop.Instance);
        ExpectTerminated(topic, AckTimeout);
        var moved = StartTopic("conflict");
        moved.Tell(first with { Data = "\"second message\""u8.ToArray() }, TestActor);
        Assert.Equal(ErrorCodes.Conflict, ExpectMsg<TopicCommands.PublishRejected>(AckTimeout).Code);
        moved.Tell(first, TestActor);
        Assert.Equal(ack.Pos, ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos);

        moved.Tell(first with { RequestId = "2" }, TestActor);
        ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
        var records = KafkaRead.From(_cluster.BootstrapServers, "bk.conflict", 0, 2);
        Assert.All(records, r => Assert.Equal("\"hello\""u8.ToArray(), r.Message.Value));
    }

    [Fact]
    public void A_retry_that_arrives_while_the_first_publish_is_still_in_flight_gets_the_same_ack_and_one_record_is_written()
    {
        var topic = StartTopic("inflight");
        topic.Tell(Publish("inflight", "0"), TestActor);
        ExpectMsg<TopicCommands.PublishAck>(AckTimeout); // the producer is connected

        _cluster.SetBrokerDown(); // the record waits in the producer's queue
        var publish = new TopicCommands.Publish("inflight", "1"u8.ToArray(), null, "client-a", "r1");
        var original = CreateTestProbe();
        var retry = CreateTestProbe();
        topic.Tell(publish, original.Ref);
        topic.Tell(publish, retry.Ref);
        retry.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // no answer while it is in flight
        _cluster.SetBrokerUp();

        var first = original.ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
        var second = retry.ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
        Assert.False(first.Duplicate);
        Assert.True(second.Duplicate);
        Assert.Equal(first.Pos, second.Pos);
        Assert.Equal(1, OffsetOf(first.Pos));
        var records = KafkaRead.From(_cluster.BootstrapServers, "bk.inflight", 0, 2);
        Assert.Equal("1"u8.ToArray(), records[1].Message.Value);
        topic.Tell(Publish("inflight", "2"), TestActor);
        Assert.Equal(2, OffsetOf(ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos)); // nothing else was written
    }

    [Fact]
    public void A_publish_that_reaches_the_writer_too_close_to_its_deadline_is_refused_and_never_written()
    {
        var topic = StartTopic("deadline");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        // Less than produce-timeout + answer-margin left: Kafka's answer could come after the client gave up.
        topic.Tell(new TopicCommands.Publish("deadline", "1"u8.ToArray(), null, "client-a", "late", now + 3_000), TestActor);
        var refused = ExpectMsg<TopicCommands.PublishRejected>(AckTimeout);
        Assert.Equal(ErrorCodes.Unavailable, refused.Code);
        Assert.Contains("nothing was written", refused.Message);

        topic.Tell(new TopicCommands.Publish("deadline", "2"u8.ToArray(), null, "client-a", "in-time", now + 60_000), TestActor);
        Assert.Equal(0, OffsetOf(ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos)); // the late one took no offset
        // The late publish was forgotten, not remembered as written: sent again in time, it is written.
        topic.Tell(new TopicCommands.Publish("deadline", "1"u8.ToArray(), null, "client-a", "late", now + 60_000), TestActor);
        Assert.Equal(1, OffsetOf(ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos));
    }

    [Fact]
    public void Stopping_for_a_hand_off_waits_for_kafkas_answer_to_what_was_sent_and_refuses_new_publishes()
    {
        var topic = StartTopic("handoff");
        topic.Tell(Publish("handoff", "0"), TestActor);
        ExpectMsg<TopicCommands.PublishAck>(AckTimeout);
        Watch(topic);

        _cluster.SetBrokerDown();
        var inFlight = CreateTestProbe();
        topic.Tell(new TopicCommands.Publish("handoff", "1"u8.ToArray(), null, "client-a", "r1"), inFlight.Ref);
        topic.Tell(TopicActor.Stop.Instance);
        topic.Tell(new TopicCommands.Publish("handoff", "2"u8.ToArray(), null, "client-a", "r2"), TestActor);
        var refused = ExpectMsg<TopicCommands.PublishRejected>(AckTimeout);
        Assert.Equal(ErrorCodes.Unavailable, refused.Code);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // still running: a record is in flight
        _cluster.SetBrokerUp();

        Assert.Equal(1, OffsetOf(inFlight.ExpectMsg<TopicCommands.PublishAck>(AckTimeout).Pos));
        ExpectTerminated(topic, AckTimeout);
    }
}
