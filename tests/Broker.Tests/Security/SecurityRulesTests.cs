using Akka.Configuration;
using Broker.Core.Log;
using Broker.Core.Security;
using Broker.Core.Settings;
using Confluent.Kafka;

namespace Broker.Tests.Security;

public sealed class SecurityRulesTests
{
    [Theory]
    [InlineData("user.{sub}.>", "user.alice.inbox", "alice", true)]
    [InlineData("user.{sub}.>", "user.alice.a.b", "alice", true)]
    [InlineData("user.{sub}.>", "user.alice", "alice", false)]
    [InlineData("user.{sub}.>", "user.bob.inbox", "alice", false)]
    [InlineData("user.{sub}.*", "user.alice.inbox", "alice", true)]
    [InlineData("user.{sub}.*", "user.alice.a.b", "alice", false)]
    [InlineData("user.{sub}.>", "user.a.b.inbox", "a.b", false)]   // a subject with dots never widens a grant
    [InlineData("user.{sub}.>", "user.*.inbox", "*", false)]
    [InlineData("chat.*", "chat.room1", null, true)]
    [InlineData("chat.*", "chat", null, false)]
    [InlineData("orders", "orders", null, true)]
    [InlineData(">", "anything.at.all", null, true)]
    public void Patterns_match_segments_with_the_subject_placeholder(string pattern, string topic, string? sub, bool matches) =>
        Assert.Equal(matches, new TopicPattern(pattern).Matches(topic, sub));

    [Theory]
    [InlineData("__consumer_offsets", "forbidden")]
    [InlineData("_schemas", "forbidden")]
    [InlineData("connect-configs", "forbidden")]
    [InlineData("mm2-offsets.a.internal", "forbidden")]
    [InlineData("chat", null)]
    public void Kafka_internal_and_denied_names_are_refused(string kafkaTopic, string? code)
    {
        string[] denied = ["connect-configs", "mm2-*", "*.internal"];
        Assert.Equal(code, KafkaTopicNames.Refusal("t", kafkaTopic, denied)?.Code);
    }

    [Fact]
    public void A_kafka_name_over_249_characters_is_a_bad_request() =>
        Assert.Equal("bad_request", KafkaTopicNames.Refusal("t", new string('x', 250), [])?.Code);

    [Fact]
    public void Client_config_is_flattened_read_from_files_and_set_on_every_client()
    {
        var secret = Path.GetTempFileName();
        File.WriteAllText(secret, "s3cret\n");
        try
        {
            var config = ConfigurationFactory.ParseString($$"""
                broker.kafka.client-config { "security.protocol" = SASL_SSL, sasl { mechanisms = PLAIN, username = broker } }
                broker.kafka.client-config-files { "sasl.password" = "{{secret}}" }
                """).WithFallback(BrokerDefaults.Config);
            var settings = KafkaSettings.Bind(new SettingsReader(config));
            var properties = settings.ClientConfig;
            Assert.Equal("SASL_SSL", properties["security.protocol"]);
            Assert.Equal("PLAIN", properties["sasl.mechanisms"]);
            Assert.Equal("broker", properties["sasl.username"]);
            Assert.Equal("s3cret", properties["sasl.password"]);
            Assert.Equal("SASL_SSL", KafkaLog.ProducerConfig(settings).Get("security.protocol"));
            Assert.Equal("s3cret", KafkaLog.ConsumerConfig(settings, "x").SaslPassword);
            Assert.Equal("broker", KafkaLog.WithClientConfig(new AdminClientConfig(), settings).SaslUsername);
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public void Access_levels_follow_the_first_matching_namespace_then_the_default()
    {
        var settings = new AuthSettings(AuthMode.Required, false, "x", null, null, null, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, null, null, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, true,
            "sub_topics", "pub_topics", AccessLevel.Authenticated, AccessLevel.Granted,
            [new NamespaceAccess(new TopicPattern("public.>"), AccessLevel.Anonymous, AccessLevel.Authenticated)]);
        var access = new TopicAccess(settings);
        var anonymous = ClientIdentity.Anonymous("127.0.0.1");
        var alice = new ClientIdentity("alice", null, [], [new TopicPattern("notes.{sub}")], null, "127.0.0.1");
        Assert.Null(access.Check(anonymous, TopicAction.Subscribe, "public.news"));
        Assert.Equal("forbidden", access.Check(anonymous, TopicAction.Publish, "public.news")?.Code);
        Assert.Null(access.Check(alice, TopicAction.Publish, "public.news"));
        Assert.Null(access.Check(alice, TopicAction.Subscribe, "other"));
        Assert.Null(access.Check(alice, TopicAction.Publish, "notes.alice"));
        Assert.Equal("forbidden", access.Check(alice, TopicAction.Publish, "notes.bob")?.Code);
    }
}
