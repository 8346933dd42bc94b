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
    public sealed record ReadOnlyChanged(bool ReadOnly) : IBrokerMessage;
}

/// <summary>
/// The sharded, persistent actor holding one topic's run-time settings (persistence id
/// <c>topic-settings-&lt;topic&gt;</c>), so they survive restarts of the whole cluster. It is
/// separate from the <see cref="TopicActor"/> so that publishing never waits on the database:
/// a topic actor asks for its settings when it starts and is told when they change.
/// </summary>
public sealed class TopicSettingsActor : ReceivePersistentActor
{
    private readonly string _topic;
    private readonly IActorRef _topics;
    private bool _readOnly;

    public TopicSettingsActor(string topic, IActorRef topics)
    {
        _topic = topic;
        _topics = topics;
        PersistenceId = PersistenceIdFor(topic);
        Recover<TopicSettingsEvents.ReadOnlyChanged>(e => _readOnly = e.ReadOnly);
        Command<TopicSettingsCommands.Get>(_ => Sender.Tell(Current()));
        Command<TopicSettingsCommands.SetReadOnly>(set =>
        {
            if (set.ReadOnly == _readOnly)
            {
                Sender.Tell(Current());
                return;
            }
            Persist(new TopicSettingsEvents.ReadOnlyChanged(set.ReadOnly), e =>
            {
                _readOnly = e.ReadOnly;
                Sender.Tell(Current());
                _topics.Tell(Current()); // the topic's actor, wherever it runs, applies it at once
            });
        });
    }

    public static string PersistenceIdFor(string topic) => "topic-settings-" + topic;

    public override string PersistenceId { get; }

    public static Props Props(string topic, IActorRef topics) => Akka.Actor.Props.Create(() => new TopicSettingsActor(topic, topics));

    private TopicSettingsCommands.Current Current() => new(_topic, _readOnly);
}
