using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>
/// A request id reused for another message: an application that keeps its client identity and
/// numbers its requests from 1 again after a reload must be told, not silently acknowledged.
/// </summary>
public sealed class PublishConflictTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task A_reused_id_with_other_data_or_key_gets_conflict_on_any_connection_and_only_the_first_message_is_in_the_log()
    {
        const string topic = "conflict.ids";
        var client = "app-" + Guid.NewGuid().ToString("N");
        string first;
        await using (var before = await fixture.Broker.ConnectAsync("?client=" + client))
        {
            first = await before.PublishAsync(topic, "hello", "1");
            var other = await before.RequestAsync(new { type = "publish", id = "1", topic, data = "second message" }, "1");
            Assert.Equal(("error", "conflict"), ((string?)other["type"], (string?)other["code"]));
            Assert.False(string.IsNullOrEmpty((string?)other["message"]));
        }
        // After a reload (a new connection, the same identity), the same id with other data or key.
        await using var after = await fixture.Broker.ConnectAsync("?client=" + client);
        var reused = await after.RequestAsync(new { type = "publish", id = "1", topic, data = "after reload" }, "1");
        Assert.Equal("conflict", (string?)reused["code"]);
        var keyed = await after.RequestAsync(new { type = "publish", id = "1", topic, data = "hello", key = "k" }, "1");
        Assert.Equal("conflict", (string?)keyed["code"]);
        // The genuine retry is still the same message.
        Assert.Equal(first, await after.PublishAsync(topic, "hello", "1"));
        var next = await after.PublishAsync(topic, "next", "2");

        var records = LogReadBack.All(fixture.Broker.KafkaBootstrap, topic);
        Assert.Equal(["\"hello\"", "\"next\""], records.Select(r => r.Text));
        Assert.Equal([first, next], records.Select(r => r.Pos));
    }
}
