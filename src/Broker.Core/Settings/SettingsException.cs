namespace Broker.Core.Settings;

/// <summary>
/// A configuration value that cannot be used: the key, the value as written (null when the key is
/// missing) and what the key expects. Thrown while the settings are bound at startup, before any
/// listener or the actor system starts; the host reports it in one line and exits with code 2.
/// </summary>
public sealed class SettingsException(string key, string? value, string expected)
    : Exception(value is null ? $"{key} is missing: expected {expected}" : $"{key} = \"{value}\": expected {expected}")
{
    /// <summary>The full HOCON path, e.g. <c>broker.http.port</c> or <c>broker.namespaces[0].partitions</c>.</summary>
    public string Key { get; } = key;

    /// <summary>The value as written; null when the key is missing.</summary>
    public string? Value { get; } = value;

    /// <summary>What the key accepts, e.g. "a port number from 0 to 65535".</summary>
    public string Expected { get; } = expected;
}
