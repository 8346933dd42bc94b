using Akka.Actor;
using Akka.Persistence;

namespace Broker.Core.Topics;

/// <summary>Per-topic settings an operator changes at run time, kept by <see cref="TopicSettingsActor"/>.</summary>
public static class TopicSettingsCommands
{
    /// <summary>Asks for a topic's settings; answered with <see cref="Current"/>.</summary>
    public sealed record Get(string Topic) : IWithTopic, IBrokerMessage;

    /// <summary>Changes a topic's read-only flag; answered with <see cref="Current"/> once persisted.</summary>
    public sealed record SetReadOnly(string Topic, bool ReadOnly) : IWithTopic, IBrokerMessage;

    /// <summary>A topic's settings: the reply to both, and the notice the topic's actor gets after a change.</summary>
    public sealed record Current(string Topic, bool ReadOnly) : IWithTopic, IBrokerMessage;
}

public static class TopicSettingsEvents
{
    /// <summary>A topic's read-only flag changed (an event of the topic's settings bucket).</summary>
    public sealed record ReadOnlyChanged(string Topic, bool ReadOnly) : IBrokerMessage;
}

/// <summary>
/// The sharded, persistent actor holding the run-time settings of one bucket of topics (persistence
/// id <c>topic-settings/&lt;bucket&gt;</c>; a topic's bucket is a stable hash of its name, see
/// <see cref="TopicSettingsMessageExtractor"/>), so they survive restarts of the whole cluster. It
/// is separate from the <see cref="TopicActor"/> so that publishing never waits on the database: a
/// topic actor asks for its settings when it starts and is told when they change. A bucket recovers
/// once and then answers from memory: a topic costs no database read when its writer starts, which
/// is what lets a node start thousands of writers of new topics a second (one persistent actor per
/// topic did about 125). It keeps only the topics whose settings differ from the defaults.
/// </summary>
public sealed class TopicSettingsActor : ReceivePersistentActor
{
    private readonly IActorRef _topics;
    private readonly HashSet<string> _readOnly = new(StringComparer.Ordinal);

    public TopicSettingsActor(string bucket, IActorRef topics)
    {
        _topics = topics;
        PersistenceId = PersistenceIdFor(bucket);
        Recover<TopicSettingsEvents.ReadOnlyChanged>(Apply);
        Command<TopicSettingsCommands.Get>(g => Sender.Tell(Current(g.Topic)));
        Command<TopicSettingsCommands.SetReadOnly>(set =>
        {
            if (set.ReadOnly == _readOnly.Contains(set.Topic))
            {
                Sender.Tell(Current(set.Topic));
                return;
            }
            Persist(new TopicSettingsEvents.ReadOnlyChanged(set.Topic, set.ReadOnly), e =>
            {
                Apply(e);
                Sender.Tell(Current(e.Topic));
                _topics.Tell(Current(e.Topic)); // the topic's actor, wherever it runs, applies it at once
            });
        });
    }

    public override string PersistenceId { get; }

    /// <summary>The persistence id of a bucket ('/' cannot appear in a topic name, so it never meets an older per-topic id).</summary>
    public static string PersistenceIdFor(string bucket) => "topic-settings/" + bucket;

    public static Props Props(string bucket, IActorRef topics) => Akka.Actor.Props.Create(() => new TopicSettingsActor(bucket, topics));

    private void Apply(TopicSettingsEvents.ReadOnlyChanged e)
    {
        if (e.ReadOnly) _readOnly.Add(e.Topic);
        else _readOnly.Remove(e.Topic);
    }

    private TopicSettingsCommands.Current Current(string topic) => new(topic, _readOnly.Contains(topic));
}
