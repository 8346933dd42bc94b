namespace Broker.Protocol;

/// <summary>Where a subscription starts when neither <c>since</c> nor <c>last</c> is given.</summary>
public enum StartFrom
{
    Latest,
    Earliest,
}

/// <summary>A decoded, validated client request (docs/protocol.md, "Client → server").</summary>
public abstract record ClientRequest(string? Id);

/// <param name="Key">Only messages whose Kafka key is exactly this string (UTF-8) are delivered; null: every message.</param>
/// <param name="Headers">Whether delivered messages carry the Kafka record headers (<c>headers</c>).</param>
public sealed record SubscribeRequest(string? Id, string Topic, StartFrom From, Position? Since, int? Last, string? Key = null, bool Headers = false) : ClientRequest(Id);

public sealed record UnsubscribeRequest(string? Id, string Topic) : ClientRequest(Id);

/// <summary>A publish; <see cref="Data"/> is the raw UTF-8 JSON of the <c>data</c> value, already validated.</summary>
public sealed record PublishRequest(string? Id, string Topic, byte[] Data, string? Key) : ClientRequest(Id);

public sealed record PingRequest(string? Id) : ClientRequest(Id);

public sealed record CommitRequest(string? Id, string Topic, Position Pos) : ClientRequest(Id);

/// <summary>Presents a token (the first frame of a browser, or a refresh on an open connection).</summary>
public sealed record AuthRequest(string? Id, string Token) : ClientRequest(Id);

/// <summary>Size limits the decoder enforces (the node's are <c>broker.websocket.max-data-bytes</c>, <c>max-last</c>, <c>max-key-bytes</c>).</summary>
public sealed record ProtocolLimits(int MaxDataBytes, int MaxLast, int MaxKeyBytes);
