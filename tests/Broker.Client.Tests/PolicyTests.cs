using Broker.Client.Internal;

namespace Broker.Client.Tests;

/// <summary>The pure parts: backoff, which closes reconnect, the bounded publish queue, positions.</summary>
public sealed class PolicyTests
{
    [Fact]
    public void Backoff_grows_exponentially_up_to_the_cap_and_jitter_only_shortens_it()
    {
        var policy = new ReconnectOptions { InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(2), Multiplier = 2, Jitter = 0.5 };
        // random = 0: no jitter.
        Assert.Equal(TimeSpan.FromMilliseconds(100), policy.DelayFor(1, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(200), policy.DelayFor(2, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(800), policy.DelayFor(4, 0));
        Assert.Equal(TimeSpan.FromSeconds(2), policy.DelayFor(6, 0));
        Assert.Equal(TimeSpan.FromSeconds(2), policy.DelayFor(10_000, 0)); // no overflow
        // The jitter takes away at most half: [d/2, d].
        Assert.Equal(TimeSpan.FromMilliseconds(400), policy.DelayFor(4, 1));
        for (var i = 0; i < 100; i++)
        {
            var d = policy.DelayFor(3, Random.Shared.NextDouble());
            Assert.InRange(d, TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(400));
        }
    }

    [Fact]
    public void Invalid_options_are_refused_with_the_property_name()
    {
        Assert.Contains("Jitter", Assert.Throws<ArgumentOutOfRangeException>(() => new BrokerClient(new Uri("ws://127.0.0.1:1/ws"),
            new BrokerClientOptions { Reconnect = new ReconnectOptions { Jitter = 1.5 } })).Message);
        Assert.Contains("MaxDelay", Assert.Throws<ArgumentOutOfRangeException>(() => new BrokerClient(new Uri("ws://127.0.0.1:1/ws"),
            new BrokerClientOptions { Reconnect = new ReconnectOptions { InitialDelay = TimeSpan.FromSeconds(5), MaxDelay = TimeSpan.FromSeconds(1) } })).Message);
        Assert.Throws<ArgumentException>(() => new BrokerClient(new Uri("ws://127.0.0.1:1/ws"), new BrokerClientOptions { ClientId = "has space" }));
        Assert.Throws<ArgumentException>(() => new BrokerClient(new Uri("ws://127.0.0.1:1/ws"), new BrokerClientOptions { AutoCommit = true }));
        Assert.Throws<ArgumentException>(() => new BrokerClient(new Uri("http://127.0.0.1:1/ws")));
    }

    [Theory]
    [InlineData(1001, "server shutting down", false, true)]
    [InlineData(1006, "", false, true)]
    [InlineData(1011, "send failed", false, true)]
    [InlineData(1013, "slow_consumer", false, true)]
    [InlineData(1000, "", false, true)]
    [InlineData(1008, "session_taken_over", false, false)]
    [InlineData(1008, "unauthorized", true, false)]
    [InlineData(1008, "token_expired", false, false)]
    [InlineData(1008, "token_expired", true, true)]
    [InlineData(1009, "frame larger than 65536 bytes", false, false)]
    [InlineData(1002, "", false, false)]
    public void Closes_that_reconnect_and_closes_that_stop(int code, string reason, bool tokenProvider, bool reconnect) =>
        Assert.Equal(reconnect, BrokerClient.ShouldReconnect(code, reason, tokenProvider));

    [Fact]
    public void The_publish_queue_is_bounded_keeps_publish_order_and_forgets_completed_ones()
    {
        var queue = new PublishQueue(3);
        queue.Add(new PendingPublish("a", "t", []));
        queue.Add(new PendingPublish("b", "t", []));
        queue.Add(new PendingPublish("c", "t", []));
        var full = Assert.Throws<PublishQueueFullException>(() => queue.Add(new PendingPublish("d", "t", [])));
        Assert.Equal(3, full.Capacity);
        Assert.Equal("b", queue.Remove("b")!.Id);
        Assert.Null(queue.Remove("b"));
        queue.Add(new PendingPublish("d", "t", []));
        Assert.Equal(["a", "c", "d"], queue.InOrder.Select(p => p.Id));
        Assert.Equal(3, queue.TakeAll().Count);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void A_position_is_at_or_before_another_when_it_is_in_every_partition()
    {
        Assert.True(Positions.AtOrBefore(Infrastructure.Pos.Of(5), Infrastructure.Pos.Of(5)));
        Assert.True(Positions.AtOrBefore(Infrastructure.Pos.Of(4), Infrastructure.Pos.Of(5)));
        Assert.False(Positions.AtOrBefore(Infrastructure.Pos.Of(6), Infrastructure.Pos.Of(5)));
        Assert.True(Positions.AtOrBefore(Infrastructure.Pos.Of(300, 2), Infrastructure.Pos.Of(300, 7)));
        Assert.False(Positions.AtOrBefore(Infrastructure.Pos.Of(300, 8), Infrastructure.Pos.Of(300, 7)));
        // A partition the last position lacks counts as nothing seen.
        Assert.False(Positions.AtOrBefore(Infrastructure.Pos.Of(1, 1), Infrastructure.Pos.Of(5)));
        // Unreadable positions: deliver (never drop on doubt).
        Assert.False(Positions.AtOrBefore("not-a-position", Infrastructure.Pos.Of(5)));
        Assert.True(Positions.TryDecode(Infrastructure.Pos.Of(1_000_000_000_000), out var big));
        Assert.Equal(1_000_000_000_000, big[0]);
    }
}
