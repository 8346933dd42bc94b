using System.Text;
using Akka.Actor;
using Broker.Core.Fanout;
using Broker.Core.Publish;
using Broker.Core.Settings;
using Broker.Core.Topics;
using Broker.Tests.Infrastructure;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Tests.Publish;

/// <summary>
/// The writer of a topic of a multiplexed namespace, starting after its shared partition filled with
/// other topics' records: it finds its own recent publishes (retries are written once) — through the
/// node's offset index when the node has one, by reading the partition's tail when not.
/// </summary>
public sealed class SharedTopicWriterTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const string Shared = "shared";

    private readonly EmbeddedLogNode _node = new(s => s with
    {
        Namespaces = [new NamespaceRule("u.>", Shared, 3, 1, true, false, null, Multiplex: true)],
    });

    private OffsetIndexing? _indexing;

    public SharedTopicWriterTests() : base("akka.loglevel = INFO")
    {
    }

    private IActorRef Writer(string topic, FeedHub? feeds) =>
        Sys.ActorOf(TopicActor.Props(topic, new TopicDependencies(_node.Log, _node.Reader(), TestDefaults.Topics) { Feeds = feeds }));

    /// <summary>Records of other topics in <paramref name="topic"/>'s partition, written as another service would.</summary>
    private async Task FillPartitionOf(string topic, int count)
    {
        var partition = _node.Map(topic).SharedPartition;
        var neighbour = Enumerable.Range(0, 1000).Select(i => $"u.n{i}").First(t => _node.Map(t).SharedPartition == partition);
        for (var n = 0; n < count; n++)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _node.Log.ProduceShared(Shared, partition, neighbour, null, Encoding.UTF8.GetBytes($$"""{"n":{{n}}}"""), "other", $"o{n}",
                r => { if (r.Error.IsError) done.SetException(new KafkaException(r.Error)); else done.SetResult(); });
            await done.Task.WaitAsync(Timeout);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_new_writer_answers_a_retry_with_the_original_ack_and_a_reused_id_with_conflict(bool index)
    {
        FeedHub? feeds = null;
        if (index)
        {
            feeds = _node.Hub(index: TestDefaults.OffsetIndex);
            _indexing = new OffsetIndexing(feeds, _node.Log, _node.Reader(), NullLogger<OffsetIndexing>.Instance);
            _indexing.Start();
        }
        const string topic = "u.writer";
        var publish = new TopicCommands.Publish(topic, "{\"v\":1}"u8.ToArray(), null, "client-a", "req-1");
        var first = Writer(topic, feeds);
        first.Tell(publish, TestActor);
        var ack = ExpectMsg<TopicCommands.PublishAck>(Timeout);
        await FillPartitionOf(topic, 300);
        Watch(first);
        Sys.Stop(first);
        ExpectTerminated(first, Timeout);

        if (feeds is not null)
        {
            // The node's feed has read the partition up to its end (else the writer would not wait
            // for it long and read the tail instead: exact too, but not what this test is about).
            var partition = _node.Map(topic).SharedPartition;
            var high = (await _node.Log.QueryWatermarksAsync(Shared, partition)).High.Value;
            await Eventually.TrueAsync(async () => (await feeds.LastOffsetsAsync(Shared, topic, partition, 1, 0, high, CancellationToken.None)).Outcome == IndexLookup.Found,
                Timeout, "the offset index has read the partition");
        }

        // The next writer (after a move or passivation) knows the publish from the log.
        var how = index ? "its own records found through the offset index" : "tail read in";
        var next = EventFilter.Info(contains: how).ExpectOne(Timeout, () =>
        {
            var writer = Writer(topic, feeds);
            writer.Tell(publish, TestActor);
            return writer;
        });
        var again = ExpectMsg<TopicCommands.PublishAck>(Timeout);
        Assert.True(again.Duplicate);
        Assert.Equal(ack.Pos, again.Pos);
        next.Tell(publish with { Data = "{\"v\":2}"u8.ToArray() }, TestActor);
        Assert.Equal(Broker.Protocol.ErrorCodes.Conflict, ExpectMsg<TopicCommands.PublishRejected>(Timeout).Code);
        next.Tell(publish with { RequestId = "req-2" }, TestActor);
        Assert.False(ExpectMsg<TopicCommands.PublishAck>(Timeout).Duplicate);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing); // stops the actor system first
        if (!disposing) return;
        _indexing?.Dispose();
        _node.Dispose();
    }
}
