using Akka.Configuration;

namespace Broker.Core.Settings;

/// <summary>
/// The defaults of every broker setting: <c>hocon/broker.conf</c>, embedded in this assembly so that
/// the binary and its defaults cannot drift apart. It is the only place defaults live; settings
/// records have none of their own. Tests get their defaults here too.
/// </summary>
public static class BrokerDefaults
{
    /// <summary>Name of the embedded resource (hocon/broker.conf).</summary>
    public const string ResourceName = "Broker.Core.Settings.broker.conf";

    private static readonly Lazy<string> HoconText = new(() =>
    {
        using var stream = typeof(BrokerDefaults).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the embedded resource {ResourceName} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    /// <summary>The text of hocon/broker.conf as built into this binary.</summary>
    public static string Hocon => HoconText.Value;

    /// <summary>hocon/broker.conf parsed (a new instance each time: Config objects are not shared).</summary>
    public static Config Config => ConfigurationFactory.ParseString(Hocon);
}
