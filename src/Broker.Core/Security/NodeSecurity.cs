using Broker.Core.Settings;
using Broker.Protocol;

namespace Broker.Core.Security;

/// <summary>
/// The node's security components, shared by every connection (and by HTTP publish): the token
/// validator (null with auth off), topic access, quotas, admission control and the topic-creation
/// guard. <see cref="AuthorizeAsync"/> is the one permission check of a topic request.
/// </summary>
/// <param name="clientLog">Where the topic-creation guard's admin client logs; null: librdkafka's own (stderr).</param>
public sealed class NodeSecurity(SecuritySettings settings, TokenValidator? validator, KafkaSettings kafka, Log.KafkaClientLog? clientLog = null) : IDisposable
{
    public SecuritySettings Settings { get; } = settings;
    public AuthSettings Auth => Settings.Auth;
    public TokenValidator? Validator { get; } = validator;
    public TopicAccess Access { get; } = new(settings.Auth);
    public Quotas Quotas { get; } = new(settings.Limits);
    public Admission Admission { get; } = new(settings.Limits);
    public TopicCreationGuard Creation => _creation ??= new TopicCreationGuard(kafka, Quotas, clientLog);
    private TopicCreationGuard? _creation;

    /// <summary>
    /// Whether <paramref name="who"/> may <paramref name="action"/> <paramref name="topic"/>:
    /// namespace level and grants, then (for a topic not yet in Kafka) the name collision rule
    /// and the subject's topic-creation quota. Null when allowed. Rates of the connection are not
    /// taken here (see <see cref="ConnectionQuota"/>).
    /// </summary>
    public async ValueTask<ProtocolError?> AuthorizeAsync(ClientIdentity who, TopicAction action, string topic)
    {
        if (Access.Check(who, action, topic) is { } refused) return refused;
        if (kafka.Resolve(topic) is not { } mapping) return null; // unmapped: TopicRouting answers
        if (TopicRouting.Refusal(kafka, topic) is not null) return null;
        return await Creation.CheckAsync(topic, mapping, who).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether <paramref name="who"/> may publish <paramref name="bytes"/> to <paramref name="topic"/>
    /// in a request of its own (HTTP publish): <see cref="AuthorizeAsync"/>, then the subject's publish
    /// rates (<c>subject-publishes-per-second</c>, <c>subject-publish-bytes-per-second</c>, shared with
    /// the subject's WebSocket connections). The per-connection rates do not apply: there is no
    /// connection to count them on. Null when allowed.
    /// </summary>
    public async ValueTask<ProtocolError?> CheckPublishAsync(ClientIdentity who, string topic, int bytes) =>
        await AuthorizeAsync(who, TopicAction.Publish, topic).ConfigureAwait(false) ?? Quotas.SubjectPublish(who.Partition, bytes);

    public void Dispose()
    {
        Quotas.Dispose();
        Admission.Dispose();
        Creation.Dispose();
    }
}
