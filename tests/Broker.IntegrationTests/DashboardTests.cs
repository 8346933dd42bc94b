using System.Net;
using System.Text.Json.Nodes;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests;

/// <summary>
/// The dashboard at / in a real headless Chromium against a real three-node cluster: the page
/// shows the members, and its live console speaks the public WebSocket protocol both ways.
/// </summary>
public sealed class DashboardTests(ThreeNodeFixture fixture) : IClassFixture<ThreeNodeFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact(Timeout = 240_000)]
    public async Task The_page_shows_three_members_Up_and_its_console_receives_and_publishes_through_the_cluster()
    {
        var nodes = fixture.Cluster.Nodes;
        await using var browser = await HeadlessBrowser.LaunchAsync();
        var page = await browser.NewPageAsync(Wait);
        var response = await page.GotoAsync(nodes[0].HttpAddress + "/");
        Assert.Equal(200, response!.Status);

        // Members: three rows with status Up (the page polls /api/cluster).
        await page.WaitForFunctionAsync("() => document.querySelectorAll('tr.member[data-status=\"Up\"]').length === 3");
        var addresses = await page.Locator("tr.member td:first-child").AllInnerTextsAsync();
        Assert.Equal(fixture.Cluster.Seeds.Order(StringComparer.Ordinal), addresses.Order(StringComparer.Ordinal));
        Assert.Contains((await page.InnerTextAsync("#self")).Trim(), fixture.Cluster.Seeds);

        // Console subscribes; a C# client on another node publishes; the message appears on the page.
        await page.WaitForSelectorAsync("body[data-ws=open]");
        await page.FillAsync("#subscribe-topic", "dash.in");
        await page.ClickAsync("#subscribe");
        await page.Locator("#log .subscribed", new() { HasText = "dash.in" }).WaitForAsync();
        await using (var publisher = await nodes[1].ConnectAsync())
        {
            var pos = await publisher.PublishAsync("dash.in", new { text = "hello from C#" }, "p1");
            await page.Locator("#log .message", new() { HasText = "hello from C#" }).WaitForAsync();
            Assert.Contains(pos, await page.Locator("#log .message", new() { HasText = "hello from C#" }).InnerTextAsync());
        }

        // The topics table shows the topic this node now reads, with its one local subscriber (the page).
        await page.WaitForFunctionAsync("() => { const c = document.querySelector('tr.topic[data-topic=\"dash.in\"] td.subscribers'); return c !== null && c.textContent === '1'; }");

        // The page publishes; a C# subscriber on a third node receives it.
        await using var subscriber = await nodes[2].ConnectAsync();
        await subscriber.SubscribeAsync("dash.out", "s");
        await page.FillAsync("#publish-topic", "dash.out");
        await page.FillAsync("#publish-data", "{\"text\":\"hello from the page\"}");
        await page.ClickAsync("#publish");
        var message = await subscriber.ExpectAsync("message", Wait);
        Assert.Equal("hello from the page", (string?)message["data"]!["text"]);
        await page.Locator("#log .ack", new() { HasText = (string)message["pos"]! }).WaitForAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task The_TypeScript_client_bundle_is_served_to_any_origin_as_committed()
    {
        using var http = new HttpClient { Timeout = Wait };
        var response = await http.GetAsync(fixture.Cluster.Nodes[0].HttpAddress + "/broker-client.js");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/javascript", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var committed = await File.ReadAllBytesAsync(Path.Combine(Repository.Root(), "src", "client-ts", "dist", "broker-client.js"));
        Assert.Equal(committed, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact(Timeout = 60_000)]
    public async Task Api_cluster_lists_the_members_and_this_node()
    {
        using var http = new HttpClient { Timeout = Wait };
        var json = JsonNode.Parse(await http.GetStringAsync(fixture.Cluster.Nodes[1].HttpAddress + "/api/cluster"))!;
        var members = json["members"]!.AsArray();
        Assert.Equal(3, members.Count);
        Assert.All(members, m => Assert.Equal("Up", (string?)m!["status"]));
        Assert.Contains((string)json["self"]!, fixture.Cluster.Seeds);
    }
}

public sealed class DashboardOffTests
{
    [Fact(Timeout = 120_000)]
    public async Task With_the_dashboard_off_there_is_no_page_and_no_api()
    {
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string> { ["broker.http.dashboard"] = "off" });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(broker.HttpAddress + "/")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(broker.HttpAddress + "/api/cluster")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(broker.HttpAddress + "/api/topics")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(broker.HttpAddress + "/broker-client.js")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(broker.HttpAddress + "/healthz")).StatusCode);
    }
}
