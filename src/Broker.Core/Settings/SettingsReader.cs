using System.Globalization;
using System.Text.RegularExpressions;
using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace Broker.Core.Settings;

/// <summary>
/// Reads and validates configuration values, once, at startup: each settings record binds its own
/// section through a reader (e.g. <see cref="ConnectionSettings.Bind"/>). A value that cannot be
/// used throws a <see cref="SettingsException"/> naming the key, the value and what is expected.
/// There are no fallback values here: every key must be present (hocon/broker.conf holds the
/// defaults of all of them, see <see cref="BrokerDefaults"/>).
/// </summary>
public sealed partial class SettingsReader
{
    private readonly Config _config;
    private readonly string _path;
    private readonly HashSet<string> _read;

    /// <summary>A reader of <paramref name="config"/> (the whole merged configuration, keys are full paths).</summary>
    public SettingsReader(Config config) : this(config, "", new HashSet<string>(StringComparer.Ordinal))
    {
    }

    private SettingsReader(Config config, string path, HashSet<string> read)
    {
        _config = config;
        _path = path;
        _read = read;
    }

    /// <summary>Every key read so far by this reader and the readers of its list items (full paths).</summary>
    public IReadOnlyCollection<string> KeysRead => _read;

    /// <summary>The full path of <paramref name="key"/> (with the list item's path for a reader of one).</summary>
    public string PathOf(string key) => _path.Length == 0 ? key : _path + "." + key;

    /// <summary>Whether the key is set (for the optional fields of list items).</summary>
    public bool Has(string key) => _config.HasPath(key);

    /// <summary>A string, possibly empty.</summary>
    public string String(string key) => Scalar(key, "a string");

    /// <summary>A string that must not be empty.</summary>
    public string NonEmpty(string key, string expected)
    {
        var value = Scalar(key, expected);
        return value.Trim().Length > 0 ? value.Trim() : throw Invalid(key, value, expected);
    }

    /// <summary>on/off (also true/false, yes/no).</summary>
    public bool Switch(string key)
    {
        const string expected = "on or off";
        var value = Scalar(key, expected);
        return value.Trim().ToLowerInvariant() switch
        {
            "on" or "true" or "yes" => true,
            "off" or "false" or "no" => false,
            _ => throw Invalid(key, value, expected),
        };
    }

    /// <summary>One of <paramref name="choices"/> (case-insensitive), mapped to its value; <paramref name="expected"/> describes them when not all names should be listed.</summary>
    public T Choice<T>(string key, (string Name, T Value)[] choices, string? expected = null)
    {
        expected ??= OneOf(choices.Select(c => c.Name.Length == 0 ? "\"\" (empty)" : c.Name));
        var value = Scalar(key, expected);
        foreach (var (name, result) in choices)
            if (string.Equals(value.Trim(), name, StringComparison.OrdinalIgnoreCase)) return result;
        throw Invalid(key, value, expected);
    }

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>.</summary>
    public int Int(string key, int min, int max = int.MaxValue, string? expected = null)
    {
        expected ??= max == int.MaxValue ? $"a whole number of at least {min}" : $"a whole number from {min} to {max}";
        var value = Scalar(key, expected);
        return int.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw Invalid(key, value, expected);
    }

    /// <summary>A TCP port, 0 (a free port) to 65535.</summary>
    public int Port(string key) => Int(key, 0, 65535, "a port number from 0 to 65535 (0 = a free port)");

    /// <summary>A size in bytes (<c>64 KiB</c>, <c>8 MiB</c>, <c>1000</c>) from <paramref name="min"/> to <paramref name="max"/> bytes.</summary>
    public long Bytes(string key, long min, long max = long.MaxValue)
    {
        var expected = $"a size such as 64 KiB or 8 MiB, at least {min} B" + (max == long.MaxValue ? "" : $" and at most {max} B");
        var value = Scalar(key, expected);
        return TryParseBytes(value, out var bytes) && bytes >= min && bytes <= max ? bytes : throw Invalid(key, value, expected);
    }

    /// <summary>A duration (<c>15s</c>, <c>500ms</c>, <c>2m</c>, <c>24h</c>, <c>7d</c>; a plain number is milliseconds) of at least <paramref name="min"/>.</summary>
    public TimeSpan Duration(string key, TimeSpan min)
    {
        var expected = "a duration such as 500ms, 15s, 2m or 24h" + (min > TimeSpan.Zero ? $", at least {Format(min)}" : "");
        var value = Scalar(key, expected);
        return TryParseDuration(value, out var duration) && duration >= min ? duration : throw Invalid(key, value, expected);
    }

    /// <summary>A duration greater than zero (a timeout, an interval).</summary>
    public TimeSpan Duration(string key)
    {
        const string expected = "a duration greater than 0 such as 500ms, 15s, 2m or 24h";
        var value = Scalar(key, expected);
        return TryParseDuration(value, out var duration) && duration > TimeSpan.Zero ? duration : throw Invalid(key, value, expected);
    }

    /// <summary>A path; a relative one is resolved against the current directory (where the user started the broker).</summary>
    public string FilePath(string key) => Path.GetFullPath(NonEmpty(key, "a file path"));

    /// <summary>A path or empty: null when empty, else absolute (resolved against the current directory).</summary>
    public string? OptionalFilePath(string key)
    {
        var value = String(key).Trim();
        if (value.Length == 0) return null;
        try
        {
            return Path.GetFullPath(value);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw Invalid(key, value, "a file path");
        }
    }

    /// <summary>
    /// Reads the secret file <paramref name="path"/> (a secret kept in a file, e.g. a Docker secret),
    /// the value of <paramref name="key"/>; a relative path is relative to the current directory.
    /// The contents trimmed; a file that cannot be read or is empty is an invalid value of the key.
    /// </summary>
    public string ReadSecret(string key, string path, string holding)
    {
        var expected = $"a readable file holding {holding}";
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw Invalid(key, path, expected);
        }
        string text;
        try
        {
            text = File.ReadAllText(full).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var problem = e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message;
            throw Invalid(key, path, $"{expected} ({full}: {problem})");
        }
        return text.Length > 0 ? text : throw Invalid(key, path, $"{expected} ({full} is empty)");
    }

    /// <summary>
    /// An object of string properties, such as <c>{ "security.protocol" = SASL_SSL, sasl { username = broker } }</c>:
    /// nested objects are flattened to dotted names (<c>sasl.username</c>). Keys under it are the
    /// user's own (not settings of the broker), so they are not reported as unknown keys.
    /// </summary>
    public IReadOnlyDictionary<string, string> Properties(string key)
    {
        const string expected = "an object of properties such as { \"security.protocol\" = SASL_SSL }";
        var value = Value(key, expected);
        var properties = new Dictionary<string, string>(StringComparer.Ordinal);
        if (value.IsEmpty) return properties;
        if (!value.IsObject()) throw Invalid(key, Describe(value), expected);
        Flatten(key, value, "", properties);
        return properties;
    }

    private void Flatten(string key, HoconValue value, string prefix, Dictionary<string, string> into)
    {
        foreach (var (name, child) in value.GetObject().Items)
        {
            var property = prefix.Length == 0 ? name : prefix + "." + name;
            if (child.IsObject()) Flatten(key, child, property, into);
            else if (child.IsString()) into[property] = child.GetString() ?? "";
            else throw Invalid($"{key}.\"{property}\"", Describe(child), "a string (the property's value)");
        }
    }

    /// <summary>A list of strings: a HOCON list, or one string of comma-separated items (as environment variables give).</summary>
    public IReadOnlyList<string> StringList(string key)
    {
        var value = Value(key, "a list of strings");
        if (IsList(value))
            return [.. value.GetArray().Select((item, i) => item.IsString() ? item.GetString() ?? "" : throw Invalid($"{key}[{i}]", Describe(item), "a string"))];
        if (value.IsString())
            return (value.GetString() ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        throw Invalid(key, Describe(value), "a list of strings");
    }

    /// <summary>A list of objects, each read with a reader of its own whose keys are relative to the item (errors name <c>key[i].field</c>).</summary>
    public IReadOnlyList<SettingsReader> ObjectList(string key)
    {
        var value = Value(key, "a list of objects");
        if (!IsList(value)) throw Invalid(key, Describe(value), "a list of objects { … }");
        var items = new List<SettingsReader>();
        var array = value.GetArray();
        for (var i = 0; i < array.Count; i++)
        {
            var item = array[i];
            if (!item.IsObject()) throw Invalid($"{key}[{i}]", Describe(item), "an object { … }");
            items.Add(new SettingsReader(new Config(new HoconRoot(item)), $"{PathOf(key)}[{i}]", _read));
        }
        return items;
    }

    /// <summary>A top-level section as HOCON, still under its key (<c>akka { … }</c>), for sections handed on as they are.</summary>
    public Config Section(string key)
    {
        if (key.Contains('.')) throw new ArgumentException("a top-level section", nameof(key));
        _read.Add(PathOf(key));
        return _config.HasPath(key) ? _config.GetValue(key).AtKey(key) : Config.Empty;
    }

    /// <summary>A <see cref="SettingsException"/> for <paramref name="key"/> (for checks a binder makes itself).</summary>
    public SettingsException Invalid(string key, string? value, string expected) => new(PathOf(key), value, expected);

    /// <summary>The value as written, for messages (null when missing).</summary>
    public string? Raw(string key)
    {
        var value = _config.HasPath(key) ? _config.GetValue(key) : null;
        return value is null ? null : Describe(value);
    }

    private HoconValue Value(string key, string expected)
    {
        _read.Add(PathOf(key));
        var value = _config.HasPath(key) ? _config.GetValue(key) : null;
        return value ?? throw new SettingsException(PathOf(key), null, expected);
    }

    private string Scalar(string key, string expected)
    {
        var value = Value(key, expected);
        return value.IsString() ? value.GetString() ?? "" : throw Invalid(key, Describe(value), expected);
    }

    /// <summary>A HOCON list (HoconValue.IsArray is false for an empty one; the parser may keep whitespace beside it).</summary>
    private static bool IsList(HoconValue value) =>
        value.Values.Any(v => v.IsArray()) && value.Values.All(v => v.IsArray() || (v.IsString() && string.IsNullOrWhiteSpace(v.GetString())));

    private static string Describe(HoconValue value) =>
        value.IsString() ? value.GetString() ?? "null" : IsList(value) ? "[…]" : value.IsObject() ? "{…}" : value.ToString();

    private static string OneOf(IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Count == 1 ? list[0] : string.Join(", ", list.Take(list.Count - 1)) + " or " + list[^1];
    }

    private static string Format(TimeSpan t) =>
        t.TotalMilliseconds < 1000 ? $"{t.TotalMilliseconds:0.###}ms" : $"{t.TotalSeconds:0.###}s";

    /// <summary>HOCON durations: a number and an optional unit (none = milliseconds).</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        var m = DurationPattern().Match(text);
        if (!m.Success || !double.TryParse(m.Groups["n"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n)) return false;
        double? ms = m.Groups["unit"].Value switch
        {
            "" or "ms" or "milli" or "millis" or "millisecond" or "milliseconds" => n,
            "us" or "micro" or "micros" or "microsecond" or "microseconds" => n / 1000,
            "ns" or "nano" or "nanos" or "nanosecond" or "nanoseconds" => n / 1_000_000,
            "s" or "second" or "seconds" => n * 1000,
            "m" or "minute" or "minutes" => n * 60_000,
            "h" or "hour" or "hours" => n * 3_600_000,
            "d" or "day" or "days" => n * 86_400_000,
            _ => null,
        };
        if (ms is not { } value || value > TimeSpan.MaxValue.TotalMilliseconds / 2) return false;
        duration = TimeSpan.FromMilliseconds(value);
        return true;
    }

    /// <summary>HOCON sizes in bytes: a whole number and an optional unit (K/KiB = 1024, kB = 1000, …; none = bytes).</summary>
    public static bool TryParseBytes(string text, out long bytes)
    {
        bytes = 0;
        var m = BytesPattern().Match(text);
        if (!m.Success || !long.TryParse(m.Groups["n"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return false;
        long? factor = m.Groups["unit"].Value switch
        {
            "" or "B" or "b" or "byte" or "bytes" => 1,
            "K" or "k" or "Ki" or "KiB" or "kibibyte" or "kibibytes" => 1L << 10,
            "kB" or "kilobyte" or "kilobytes" => 1000,
            "M" or "m" or "Mi" or "MiB" or "mebibyte" or "mebibytes" => 1L << 20,
            "MB" or "megabyte" or "megabytes" => 1_000_000,
            "G" or "g" or "Gi" or "GiB" or "gibibyte" or "gibibytes" => 1L << 30,
            "GB" or "gigabyte" or "gigabytes" => 1_000_000_000,
            _ => null,
        };
        if (factor is not { } f || n > long.MaxValue / f) return false;
        bytes = n * f;
        return true;
    }

    [GeneratedRegex(@"^\s*(?<n>[0-9]+(\.[0-9]+)?)\s*(?<unit>[a-z]*)\s*$")]
    private static partial Regex DurationPattern();

    [GeneratedRegex(@"^\s*(?<n>[0-9]+)\s*(?<unit>[A-Za-z]*)\s*$")]
    private static partial Regex BytesPattern();
}
