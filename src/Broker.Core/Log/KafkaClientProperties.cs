using Akka.Configuration;
using Akka.Configuration.Hocon;
using Broker.Core.Security;

namespace Broker.Core.Log;

/// <summary>
/// <c>broker.kafka.client-config</c>: librdkafka properties passed through to every Kafka client
/// of the node (quote dotted names: <c>"security.protocol" = SASL_SSL</c>; unquoted ones nest and
/// are flattened back to dotted names), and <c>broker.kafka.client-config-files</c>: properties
/// whose values are read from files (secrets: <c>"sasl.password" = /run/secrets/kafka_password</c>).
/// </summary>
public static class KafkaClientProperties
{
    public static IReadOnlyDictionary<string, string> FromConfig(Config c)
    {
        var properties = new Dictionary<string, string>(StringComparer.Ordinal);
        Flatten(c.GetValue("broker.kafka.client-config"), "", properties);
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        Flatten(c.GetValue("broker.kafka.client-config-files"), "", files);
        foreach (var (key, path) in files) properties[key] = SecretFile.Read(path, $"broker.kafka.client-config-files \"{key}\"");
        return properties;
    }

    private static void Flatten(HoconValue? value, string prefix, Dictionary<string, string> into)
    {
        if (value is null || value.IsEmpty) return;
        if (value.IsObject())
        {
            foreach (var (key, child) in value.GetObject().Items) Flatten(child, prefix.Length == 0 ? key : prefix + "." + key, into);
            return;
        }
        if (prefix.Length == 0) throw new ConfigurationException("broker.kafka.client-config must be an object of librdkafka properties");
        into[prefix] = value.GetString();
    }
}
