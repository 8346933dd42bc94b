using System.Text.Json.Nodes;
using YamlDotNet.Serialization;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>YAML (compose, Prometheus, Grafana provisioning) read as JSON nodes, so tests can walk it; every scalar is a string.</summary>
public static class Yaml
{
    public static JsonNode Parse(string yaml)
    {
        var value = new DeserializerBuilder().Build().Deserialize<object>(yaml);
        var json = new SerializerBuilder().JsonCompatible().Build().Serialize(value);
        return JsonNode.Parse(json) ?? throw new InvalidOperationException("empty YAML");
    }

    public static JsonNode ParseFile(params string[] path) => Parse(File.ReadAllText(Path.Combine(path)));
}
