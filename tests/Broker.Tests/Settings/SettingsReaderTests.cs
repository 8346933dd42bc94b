using Akka.Configuration;
using Broker.Core.Settings;

namespace Broker.Tests.Settings;

public sealed class SettingsReaderTests
{
    private static SettingsReader Reader(string hocon) => new(ConfigurationFactory.ParseString(hocon));

    [Theory]
    [InlineData("15s", 15_000)]
    [InlineData("500ms", 500)]
    [InlineData("500", 500)]
    [InlineData("2 m", 120_000)]
    [InlineData("24h", 86_400_000)]
    [InlineData("7d", 604_800_000)]
    [InlineData("1.5s", 1_500)]
    public void Durations_take_a_number_and_a_unit(string text, double ms)
    {
        Assert.True(SettingsReader.TryParseDuration(text, out var d));
        Assert.Equal(ms, d.TotalMilliseconds);
    }

    [Theory]
    [InlineData("fast")]
    [InlineData("-1s")]
    [InlineData("10 parsecs")]
    [InlineData("")]
    public void Durations_refuse_anything_else(string text) => Assert.False(SettingsReader.TryParseDuration(text, out _));

    [Theory]
    [InlineData("64 KiB", 65_536)]
    [InlineData("8 MiB", 8_388_608)]
    [InlineData("1 kB", 1_000)]
    [InlineData("1000", 1_000)]
    [InlineData("2G", 2_147_483_648)]
    public void Sizes_take_a_whole_number_and_a_unit(string text, long bytes)
    {
        Assert.True(SettingsReader.TryParseBytes(text, out var b));
        Assert.Equal(bytes, b);
    }

    [Theory]
    [InlineData("-5")]
    [InlineData("1.5 KiB")]
    [InlineData("lots")]
    [InlineData("99999999999999999999")]
    public void Sizes_refuse_anything_else(string text) => Assert.False(SettingsReader.TryParseBytes(text, out _));

    [Fact]
    public void A_bad_value_names_the_key_the_value_and_what_is_expected()
    {
        var e = Assert.Throws<SettingsException>(() => Reader("broker.http.port = eighty").Port("broker.http.port"));
        Assert.Equal(("broker.http.port", "eighty"), (e.Key, e.Value));
        Assert.Equal("broker.http.port = \"eighty\": expected a port number from 0 to 65535 (0 = a free port)", e.Message);
    }

    [Fact]
    public void Limits_are_checked()
    {
        Assert.Throws<SettingsException>(() => Reader("p = 70000").Port("p"));
        Assert.Throws<SettingsException>(() => Reader("n = 0").Int("n", 1));
        Assert.Throws<SettingsException>(() => Reader("b = \"-5\"").Bytes("b", 1));
        Assert.Throws<SettingsException>(() => Reader("t = 0s").Duration("t", TimeSpan.FromMilliseconds(1)));
        Assert.Equal(65535, Reader("p = 65535").Port("p"));
    }

    [Fact]
    public void A_missing_key_is_an_error_not_a_default()
    {
        var e = Assert.Throws<SettingsException>(() => Reader("a = 1").Duration("broker.x", TimeSpan.Zero));
        Assert.Null(e.Value);
        Assert.StartsWith("broker.x is missing", e.Message);
    }

    [Fact]
    public void Switches_and_choices_list_what_they_accept()
    {
        Assert.True(Reader("s = on").Switch("s"));
        Assert.False(Reader("s = \"false\"").Switch("s"));
        var s = Assert.Throws<SettingsException>(() => Reader("s = nope").Switch("s"));
        Assert.Equal("on or off", s.Expected);
        var c = Assert.Throws<SettingsException>(() => Reader("c = foo").Choice("c", [("a", 1), ("b", 2), ("c", 3)]));
        Assert.Equal("a, b or c", c.Expected);
        Assert.Equal(2, Reader("c = B").Choice("c", [("a", 1), ("b", 2)]));
    }

    [Fact]
    public void Lists_are_hocon_lists_or_comma_separated_strings()
    {
        Assert.Equal(["a", "b"], Reader("l = [a, b]").StringList("l"));
        Assert.Equal(["a", "b"], Reader("l = \"a, b\"").StringList("l"));
        Assert.Empty(Reader("l = []   # a comment after it").StringList("l"));
        Assert.Throws<SettingsException>(() => Reader("l { x = 1 }").StringList("l"));
    }

    [Fact]
    public void Items_of_an_object_list_are_named_by_their_index()
    {
        var items = Reader("ns = [{ a = 1 }, { a = x }]").ObjectList("ns");
        Assert.Equal(1, items[0].Int("a", 0));
        var e = Assert.Throws<SettingsException>(() => items[1].Int("a", 0));
        Assert.Equal("ns[1].a", e.Key);
    }

    [Fact]
    public void Relative_paths_are_made_absolute_against_the_current_directory() =>
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, "data", "x.db"), Reader("p = \"./data/x.db\"").FilePath("p"));

    [Fact]
    public void Properties_flatten_nested_objects_to_dotted_names_and_refuse_lists()
    {
        var r = Reader("""
            c { "security.protocol" = SASL_SSL, sasl { username = u, mechanisms = PLAIN } }
            e {}
            l { x = [1] }
            s = text
            """);
        Assert.Equal(new Dictionary<string, string> { ["security.protocol"] = "SASL_SSL", ["sasl.username"] = "u", ["sasl.mechanisms"] = "PLAIN" }, r.Properties("c"));
        Assert.Empty(r.Properties("e"));
        Assert.Equal("l.\"x\"", Assert.Throws<SettingsException>(() => r.Properties("l")).Key);
        Assert.Equal("s", Assert.Throws<SettingsException>(() => r.Properties("s")).Key);
    }

    [Fact]
    public void A_secret_file_is_read_trimmed_and_a_missing_or_empty_one_is_a_bad_value_of_its_key()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "  s3cret \n");
            var r = Reader($"k = \"{file}\"");
            Assert.Equal("s3cret", r.ReadSecret("k", file, "a secret"));
            var missing = Assert.Throws<SettingsException>(() => r.ReadSecret("k", file + ".gone", "a secret"));
            Assert.Equal(("k", file + ".gone"), (missing.Key, missing.Value));
            Assert.Contains("no such file", missing.Expected);
            File.WriteAllText(file, "\n");
            Assert.Contains("is empty", Assert.Throws<SettingsException>(() => r.ReadSecret("k", file, "a secret")).Expected);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void An_optional_file_path_is_null_when_empty_and_absolute_otherwise()
    {
        var r = Reader("a = \"\", b = \"keys/jwks.json\"");
        Assert.Null(r.OptionalFilePath("a"));
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, "keys", "jwks.json"), r.OptionalFilePath("b"));
    }

    [Fact]
    public void The_defaults_bind_into_the_core_records()
    {
        var r = new SettingsReader(BrokerDefaults.Config);
        Assert.Equal(64 * 1024, ConnectionSettings.Bind(r).MaxFrameBytes);
        Assert.Equal(1, KafkaSettings.Bind(r).Partitions);
        Assert.Equal(10_000, Broker.Core.Publish.TopicSettings.Bind(r).DedupWindow);
        Assert.Equal(TimeSpan.FromHours(24), Broker.Core.Sessions.SessionSettings.Bind(r).ExpireAfter);
    }
}
