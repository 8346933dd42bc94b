namespace Broker.Client;

/// <summary>
/// The broker's acknowledgement of a publish: the message is in the log (acks=all) at
/// <paramref name="Pos"/>. A publish resent after a reconnect is answered with the same position.
/// </summary>
/// <param name="Topic">The topic published to.</param>
/// <param name="Pos">The message's position: opaque; hand it back as <c>since</c>, never parse it.</param>
public sealed record Ack(string Topic, string Pos);

/// <summary>The outcome of one item of an HTTP batch publish: an <see cref="Ack"/> or an error.</summary>
public sealed record PublishResult
{
    /// <summary>The ack when the item was written; null when it was refused.</summary>
    public Ack? Ack { get; init; }

    /// <summary>The refusal when the item was not written; null when it was.</summary>
    public BrokerErrorException? Error { get; init; }

    /// <summary>Whether the item was written.</summary>
    public bool IsAck => Ack is not null;
}
