using Akka.Configuration;
using Broker.Core.Settings;

namespace Broker.Server.Configuration;

/// <summary>
/// The merged HOCON of a node and where its values came from: the built-in defaults
/// (hocon/broker.conf), the file named by <c>BROKER_CONFIG</c>, environment variables and explicit
/// overrides (tests), each layer over the one before. Settings are bound from <see cref="Config"/>;
/// the layers name the origin of a bad value in the startup error.
/// </summary>
public sealed class LoadedConfig
{
    private readonly IReadOnlyList<(string Origin, Config Layer)> _layers;

    internal LoadedConfig(Config config, IReadOnlyList<(string Origin, Config Layer)> layers, IReadOnlyList<string> files, IReadOnlyDictionary<string, string> environment)
    {
        Config = config;
        _layers = layers;
        Files = files;
        EnvironmentVariables = environment;
    }

    /// <summary>The merged configuration.</summary>
    public Config Config { get; }

    /// <summary>Absolute paths of the configuration files read over the built-in defaults.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>The environment variables that set a key, and the key each one set.</summary>
    public IReadOnlyDictionary<string, string> EnvironmentVariables { get; }

    /// <summary>This configuration with <paramref name="hocon"/> over it (tests: values that are not strings).</summary>
    public LoadedConfig With(string hocon)
    {
        var layer = ConfigurationFactory.ParseString(hocon);
        return new LoadedConfig(layer.WithFallback(Config), [.. _layers, ("an override", layer)], Files, EnvironmentVariables);
    }

    /// <summary>
    /// Where the value of <paramref name="key"/> came from: "env BROKER_HTTP_PORT", a file path,
    /// "an override" or "the defaults"; null for a key that is not in the configuration.
    /// </summary>
    public string? OriginOf(string key)
    {
        // broker.namespaces[0].partitions: the list's origin; broker.kafka.client-config-files."sasl.password": the map's.
        var index = key.IndexOfAny(['[', '"']);
        var path = (index < 0 ? key : key[..index]).TrimEnd('.');
        for (var i = _layers.Count - 1; i >= 0; i--)
        {
            if (!HasPath(_layers[i].Layer, path)) continue;
            if (_layers[i].Origin == BrokerConfig.EnvironmentOrigin)
            {
                var variable = EnvironmentVariables.FirstOrDefault(e => e.Value == path).Key;
                return variable is null ? "the environment" : "env " + variable;
            }
            return _layers[i].Origin;
        }
        return null;
    }

    /// <summary>One line for a bad value: the key, its origin, the value and what is expected.</summary>
    public string Describe(SettingsException e)
    {
        var origin = OriginOf(e.Key);
        var from = origin is null or BrokerConfig.DefaultsOrigin ? "" : $" (from {origin})";
        return e.Value is null
            ? $"invalid configuration: {e.Key} is missing{from}: expected {e.Expected}"
            : $"invalid configuration: {e.Key} = \"{e.Value}\"{from}: expected {e.Expected}";
    }

    private static bool HasPath(Config config, string path)
    {
        try
        {
            return config.HasPath(path);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return false; // a layer where a parent of the path is not an object
        }
    }
}
