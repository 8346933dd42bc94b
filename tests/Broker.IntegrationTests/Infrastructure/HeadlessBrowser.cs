using Microsoft.Playwright;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// A real headless Chromium driven by Playwright: Debian's <c>/usr/bin/chromium</c> (Playwright's
/// own browser download is not used), a fresh temporary profile, no network services of its own.
/// Disposing closes the browser Playwright started.
/// </summary>
public sealed class HeadlessBrowser : IAsyncDisposable
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;

    private HeadlessBrowser(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        _browser = browser;
    }

    public static async Task<HeadlessBrowser> LaunchAsync()
    {
        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException($"{ChromiumPath} is missing: install Debian's chromium (scripts/test.sh does)");
        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = ChromiumPath,
                Headless = true,
                Timeout = 60_000,
                Args =
                [
                    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                ],
            });
            return new HeadlessBrowser(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>A new page (own context) whose waits time out after <paramref name="timeout"/>.</summary>
    public async Task<IPage> NewPageAsync(TimeSpan timeout)
    {
        var page = await _browser.NewPageAsync();
        page.SetDefaultTimeout((float)timeout.TotalMilliseconds);
        return page;
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.CloseAsync();
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }
}
