using System.Text.Json.Serialization;
using Broker.Client.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>The README's service example, line for line (only the address differs), run against the scripted broker.</summary>
public sealed class ReadmeExampleTests
{
    private static async Task ServiceExample(Uri address, TextWriter console)
    {
        await using var broker = await BrokerClient.ConnectAsync(address,
            new BrokerClientOptions { ClientId = "billing-1" }); // stable identity: resends are written once
        foreach (var invoice in new[] { new Invoice(1, "cust-1", 9.5m), new Invoice(2, "cust-2", 20m) })
        {
            var ack = await broker.PublishAsync("billing.invoices", invoice, AppJson.Default.Invoice, key: invoice.Customer);
            console.WriteLine($"invoice {invoice.Id} is in the log at {ack.Pos}"); // after acks=all; retried across drops
        }
    }

    [Fact]
    public async Task The_service_example_publishes_each_invoice_and_prints_its_position()
    {
        await using var fake = await FakeBroker.StartAsync();
        var console = new StringWriter();
        var running = ServiceExample(fake.WsUri, console);
        var c = await fake.NextConnectionAsync();
        Assert.Equal("billing-1", c.Query["client"]);
        for (var i = 1; i <= 2; i++)
        {
            var publish = await c.ExpectAsync("publish");
            Assert.Equal($"cust-{i}", (string?)publish["key"]);
            Assert.Equal(i, (int)publish["data"]!["Id"]!);
            await c.AckAsync(publish, Pos.Of(i));
        }
        await running.WaitAsync(FakeBroker.Timeout);
        Assert.Equal($"invoice 1 is in the log at {Pos.Of(1)}\ninvoice 2 is in the log at {Pos.Of(2)}\n", console.ToString().ReplaceLineEndings("\n"));
    }
}

internal sealed record Invoice(int Id, string Customer, decimal Total);

[JsonSerializable(typeof(Invoice))]
internal sealed partial class AppJson : JsonSerializerContext;
