using Broker.Protocol;

namespace Broker.Core.Security;

/// <summary>What a client wants to do with a topic.</summary>
public enum TopicAction
{
    /// <summary>Subscribe (history included) and commit positions.</summary>
    Subscribe,
    Publish,
}

/// <summary>
/// Who may subscribe and publish where: the namespace's level (<c>subscribe</c>/<c>publish</c> of
/// the first matching <c>broker.namespaces</c> entry, else <c>broker.auth.default-access</c>), and
/// for <c>granted</c> the token's grants. With auth off nothing is checked here (every client is
/// anonymous; the namespaces' read-only flag and the Kafka-name rules still apply elsewhere).
/// </summary>
public sealed class TopicAccess(AuthSettings settings)
{
    /// <summary>Null when allowed, else the <c>forbidden</c> (or <c>unauthorized</c>) error to send.</summary>
    public ProtocolError? Check(ClientIdentity identity, TopicAction action, string topic)
    {
        if (!settings.Enabled) return null;
        var level = LevelOf(action, topic);
        var verb = action == TopicAction.Subscribe ? "subscribe to" : "publish to";
        switch (level)
        {
            case AccessLevel.Anonymous:
                return null;
            case AccessLevel.Authenticated:
                return identity.IsAuthenticated ? null : new ProtocolError(ErrorCodes.Forbidden, $"{verb} {topic} needs a token (authenticate first)");
            default:
                if (!identity.IsAuthenticated) return new ProtocolError(ErrorCodes.Forbidden, $"{verb} {topic} needs a token that grants it");
                var grants = action == TopicAction.Subscribe ? identity.SubscribeGrants : identity.PublishGrants;
                foreach (var g in grants)
                {
                    if (g.Matches(topic, identity.Subject)) return null;
                }
                var claim = action == TopicAction.Subscribe ? settings.SubscribeClaim : settings.PublishClaim;
                return new ProtocolError(ErrorCodes.Forbidden, $"the token of {identity.Subject} does not grant {verb} {topic} (claim {claim})");
        }
    }

    private AccessLevel LevelOf(TopicAction action, string topic)
    {
        foreach (var n in settings.Namespaces)
        {
            if (n.Pattern.Matches(topic)) return action == TopicAction.Subscribe ? n.Subscribe : n.Publish;
        }
        return action == TopicAction.Subscribe ? settings.DefaultSubscribe : settings.DefaultPublish;
    }
}
