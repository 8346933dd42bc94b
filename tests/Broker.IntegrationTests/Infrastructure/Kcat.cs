using System.Diagnostics;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>Debian's kcat as a real external Kafka producer: one record per line.</summary>
public static class Kcat
{
    public static async Task ProduceAsync(string bootstrap, string topic, string[] args, params string[] lines)
    {
        var kcat = Process.Start(new ProcessStartInfo("kcat", ["-b", bootstrap, "-P", "-t", topic, .. args])
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
        })!;
        foreach (var line in lines) await kcat.StandardInput.WriteLineAsync(line);
        kcat.StandardInput.Close();
        await kcat.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(kcat.ExitCode == 0, await kcat.StandardError.ReadToEndAsync());
    }
}
