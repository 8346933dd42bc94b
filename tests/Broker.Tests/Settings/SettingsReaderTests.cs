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
    public void The_defaults_bind_into_the_core_records()
    {
        var r = new SettingsReader(BrokerDefaults.Config);
        Assert.Equal(64 * 1024, ConnectionSettings.Bind(r).MaxFrameBytes);
        Assert.Equal(1, KafkaSettings.Bind(r).Partitions);
        Assert.Equal(10_000, Broker.Core.Publish.TopicSettings.Bind(r).DedupWindow);
        Assert.Equal(TimeSpan.FromHours(24), Broker.Core.Sessions.SessionSettings.Bind(r).ExpireAfter);
    }
}
