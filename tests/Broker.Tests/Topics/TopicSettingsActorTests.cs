using Akka.Actor;
using Broker.Core.Topics;

namespace Broker.Tests.Topics;

/// <summary>A settings bucket keeps each of its topics' flags apart, tells the topic's actor of a change, and recovers them.</summary>
public sealed class TopicSettingsActorTests() : Akka.TestKit.Xunit2.TestKit("""
    akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
    akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
    """)
{
    [Fact]
    public void Topics_of_one_bucket_keep_their_own_flags_across_a_restart_and_the_topics_actor_is_told_of_a_change()
    {
        const string a = "orders.eu", b = "orders.us";
        var topics = CreateTestProbe(); // stands for the topic region
        var bucket = Sys.ActorOf(TopicSettingsActor.Props("7", topics));

        bucket.Tell(new TopicSettingsCommands.Get(a), TestActor);
        Assert.False(ExpectMsg<TopicSettingsCommands.Current>().ReadOnly); // nothing stored: the defaults
        bucket.Tell(new TopicSettingsCommands.SetReadOnly(a, true), TestActor);
        Assert.Equal(new TopicSettingsCommands.Current(a, true), ExpectMsg<TopicSettingsCommands.Current>());
        Assert.Equal(new TopicSettingsCommands.Current(a, true), topics.ExpectMsg<TopicSettingsCommands.Current>());
        bucket.Tell(new TopicSettingsCommands.Get(b), TestActor);
        Assert.Equal(new TopicSettingsCommands.Current(b, false), ExpectMsg<TopicSettingsCommands.Current>());
        // Setting what is already set changes nothing and tells nobody.
        bucket.Tell(new TopicSettingsCommands.SetReadOnly(b, false), TestActor);
        Assert.False(ExpectMsg<TopicSettingsCommands.Current>().ReadOnly);
        topics.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        Watch(bucket);
        Sys.Stop(bucket);
        ExpectTerminated(bucket);
        var again = Sys.ActorOf(TopicSettingsActor.Props("7", topics));
        again.Tell(new TopicSettingsCommands.Get(a), TestActor);
        Assert.True(ExpectMsg<TopicSettingsCommands.Current>().ReadOnly);
        again.Tell(new TopicSettingsCommands.SetReadOnly(a, false), TestActor);
        Assert.False(ExpectMsg<TopicSettingsCommands.Current>().ReadOnly);
        again.Tell(new TopicSettingsCommands.Get(b), TestActor);
        Assert.False(ExpectMsg<TopicSettingsCommands.Current>().ReadOnly);
    }

    [Fact]
    public void A_topics_bucket_is_stable_and_settings_messages_go_to_it()
    {
        var extractor = new TopicSettingsMessageExtractor(100);
        var bucket = extractor.EntityId(new TopicSettingsCommands.Get("user.42.notifications"));
        Assert.Equal(bucket, TopicSettingsMessageExtractor.BucketOf("user.42.notifications"));
        Assert.Equal(bucket, extractor.EntityId(new TopicSettingsCommands.SetReadOnly("user.42.notifications", true)));
        Assert.InRange(int.Parse(bucket), 0, TopicSettingsMessageExtractor.Buckets - 1);
        // Where a topic's settings are stored must not depend on the process (string.GetHashCode does).
        Assert.Equal("30", TopicSettingsMessageExtractor.BucketOf("orders")); // pinned
    }
}
