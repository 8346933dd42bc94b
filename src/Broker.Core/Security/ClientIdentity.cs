namespace Broker.Core.Security;

/// <summary>
/// Who a connection or an HTTP publish request is: the subject of its validated token (from the
/// WebSocket upgrade, the first-frame <c>auth</c>, or the request's <c>Authorization: Bearer</c>)
/// with the token's grants and expiry, or anonymous. <see cref="Partition"/> is the key its
/// per-subject limits are counted under (the subject, or the remote address of an anonymous
/// client), so a subject's WebSocket and HTTP publishes share one rate. The client id its publishes
/// are written with is <see cref="Scope"/> of the WebSocket <c>?client=</c>, or <c>http:&lt;subject&gt;</c>
/// (anonymous: <c>http:</c>) for HTTP publishes.
/// </summary>
public sealed record ClientIdentity(
    string? Subject,
    DateTimeOffset? Expires,
    IReadOnlyList<TopicPattern> SubscribeGrants,
    IReadOnlyList<TopicPattern> PublishGrants,
    string? TokenId,
    string RemoteAddress)
{
    public static ClientIdentity Anonymous(string remoteAddress) => new(null, null, [], [], null, remoteAddress);

    public bool IsAuthenticated => Subject is not null;

    /// <summary>The key of per-subject limits: <c>sub:&lt;subject&gt;</c>, or <c>ip:&lt;address&gt;</c> when anonymous.</summary>
    public string Partition => Subject is not null ? "sub:" + Subject : "ip:" + RemoteAddress;

    /// <summary>
    /// A client-chosen id (<c>?session=</c>, <c>?client=</c>) in this identity's own space:
    /// <c>&lt;subject&gt;/&lt;id&gt;</c> when authenticated (ids never contain '/', so two subjects
    /// can never produce the same scoped id), the id itself when anonymous.
    /// </summary>
    public string Scope(string id) => Subject is null ? id : Subject + "/" + id;
}
