using System.Text.Json;

namespace Broker.Client.Internal;

/// <summary>Checks raw data before it is sent: a publish's <c>data</c> is exactly one JSON value.</summary>
internal static class JsonValue
{
    public static void ThrowIfNotOneValue(ReadOnlySpan<byte> utf8, string paramName)
    {
        var reader = new Utf8JsonReader(utf8);
        try
        {
            if (!reader.Read()) throw new ArgumentException("data is empty", paramName);
            reader.Skip();
            if (reader.Read()) throw new ArgumentException("data must be exactly one JSON value", paramName);
        }
        catch (JsonException e)
        {
            throw new ArgumentException("data is not valid JSON: " + e.Message, paramName, e);
        }
    }
}
