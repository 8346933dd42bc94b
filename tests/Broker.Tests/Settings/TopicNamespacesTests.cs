using Broker.Core.Settings;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Settings;

public sealed class TopicNamespacesTests
{
    private static NamespaceRule Rule(string pattern, string kafkaTopic = "{topic}", bool create = true, bool readOnly = false) =>
        new(pattern, kafkaTopic, 1, 1, create, readOnly, null);

    [Theory]
    [InlineData("orders.*", "orders.eu", true)]
    [InlineData("orders.*", "orders", false)]
    [InlineData("orders.*", "orders.eu.fr", false)]
    [InlineData("orders.>", "orders.eu", true)]
    [InlineData("orders.>", "orders.eu.fr", true)]
    [InlineData("orders.>", "orders", false)]
    [InlineData("*.events", "a.events", true)]
    [InlineData("*.events", "a.b.events", false)]
    [InlineData("chat", "chat", true)]
    [InlineData("chat", "chat.x", false)]
    [InlineData("chat", "chatter", false)]
    [InlineData(">", "anything.at.all", true)]
    public void Patterns_match_dot_segments(string pattern, string topic, bool matches) =>
        Assert.Equal(matches, Rule(pattern).Matches(topic));

    [Fact]
    public void First_matching_namespace_wins_and_the_template_names_the_kafka_topic()
    {
        var settings = TestDefaults.Kafka() with
        {
            TopicPrefix = "pre-",
            Namespaces = [Rule("orders.vip", "vip-orders", create: false), Rule("orders.*", "svc.{topic}"), Rule("feeds.>", "{topic}", readOnly: true)],
        };
        Assert.Equal(new TopicMapping("vip-orders", 1, 1, false, false, null), settings.Resolve("orders.vip"));
        Assert.Equal("svc.orders.eu", settings.Resolve("orders.eu")!.KafkaTopic);
        Assert.True(settings.Resolve("feeds.a.b")!.ReadOnly);
        // Unmapped: the default mapping (prefix + topic, created on use) when allowed.
        Assert.Equal(new TopicMapping("pre-chat", 1, 1, true, false, null), settings.Resolve("chat"));
        Assert.Equal("pre-chat", settings.KafkaTopicFor("chat"));
    }

    [Theory]
    [InlineData(UnmappedTopics.NotFound)]
    [InlineData(UnmappedTopics.Forbidden)]
    public void Unmapped_topics_are_refused_when_configured(UnmappedTopics policy)
    {
        var settings = TestDefaults.Kafka() with { Namespaces = [Rule("orders.*")], Unmapped = policy };
        Assert.Null(settings.Resolve("chat"));
        Assert.NotNull(settings.Resolve("orders.x"));
    }

    [Theory]
    [InlineData("broker.users", 12)]   // the shared topic of a multiplexed namespace
    [InlineData("svc.orders.eu", 6)]   // a name the template of orders.* makes
    [InlineData("svc.other", 2)]       // the template's shape, but no topic of the namespace
    [InlineData("chat", 2)]            // the default mapping
    public void A_kafka_topic_a_client_names_first_gets_the_partitions_of_its_namespace(string kafkaTopic, int partitions)
    {
        var settings = TestDefaults.Kafka() with
        {
            Partitions = 2,
            Namespaces =
            [
                new NamespaceRule("user.>", "broker.users", 12, 1, true, false, null, Multiplex: true),
                new NamespaceRule("orders.*", "svc.{topic}", 6, 1, true, false, null),
            ],
        };
        Assert.Equal(partitions, settings.PartitionsOfKafkaTopic(kafkaTopic));
    }
}
