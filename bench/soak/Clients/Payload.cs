using System.Text;
using System.Text.Json;

namespace Broker.Soak.Clients;

/// <summary>A message's identity in the soak: the producer's name and its sequence number (the <c>data</c> carries both).</summary>
public readonly record struct MsgId(string P, long S)
{
    public override string ToString() => $"{P}#{S}";
}

/// <summary>The data of every soak message: <c>{"p":producer,"s":seq,"x":padding}</c>.</summary>
public static class Payload
{
    private static readonly Dictionary<string, string> Names = new(StringComparer.Ordinal);

    public static byte[] Encode(MsgId id, int padding)
    {
        var json = $$"""{"p":"{{id.P}}","s":{{id.S}},"x":"{{new string('x', padding)}}"}""";
        return Encoding.UTF8.GetBytes(json);
    }

    /// <summary>Reads the identity back from a record's value or a message's data.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> json, out MsgId id)
    {
        id = default;
        string? p = null;
        long? s = null;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("p"u8))
                {
                    reader.Read();
                    p = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("s"u8))
                {
                    reader.Read();
                    s = reader.TokenType == JsonTokenType.Number ? reader.GetInt64() : null;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            return false;
        }
        if (p is null || s is null) return false;
        id = new MsgId(Intern(p), s.Value);
        return true;
    }

    /// <summary>One string instance per producer name (hundreds of thousands of deliveries share a few names).</summary>
    private static string Intern(string name)
    {
        lock (Names)
        {
            if (Names.TryGetValue(name, out var known)) return known;
            Names[name] = name;
            return name;
        }
    }
}
