using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Broker.IntegrationTests.Infrastructure;

namespace Broker.IntegrationTests.Security;

/// <summary>
/// The public listener and the admin API on the SAME port number of two loopback addresses
/// (127.0.0.1 and 127.0.0.2), with an admin token and the internal endpoints moved to the admin listener;
/// its log captured at info (admin actions are logged at info).
/// </summary>
public sealed class AdminSecurityFixture : IAsyncLifetime
{
    public const string Token = "admin-secret-token";
    public TestBroker Broker { get; private set; } = null!;
    public LogCapture Log { get; private set; } = null!;
    public int Port { get; private set; }

    public async Task InitializeAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            Port = FreePort();
            try
            {
                Broker = await TestBroker.StartAsync(new Dictionary<string, string>
                {
                    ["broker.http.host"] = "127.0.0.1",
                    ["broker.http.port"] = Port.ToString(),
                    ["broker.admin.host"] = "127.0.0.2",
                    ["broker.admin.port"] = Port.ToString(),
                    ["broker.admin.token"] = Token,
                    ["broker.http.internal-endpoints"] = "admin",
                    ["broker.logging.level"] = "info",
                });
                Log = LogCapture.Attach(Broker);
                return;
            }
            catch (IOException) when (attempt < 3)
            {
                // the port was taken between the probe and the bind: another one
            }
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

public sealed class AdminSecurityTests(AdminSecurityFixture fixture) : IClassFixture<AdminSecurityFixture>
{
    private string Public => $"http://127.0.0.1:{fixture.Port}";
    private string Admin => $"http://127.0.0.2:{fixture.Port}";

    private static HttpRequestMessage Request(HttpMethod method, string url, string? token = AdminSecurityFixture.Token, HttpContent? content = null)
    {
        var r = new HttpRequestMessage(method, url) { Content = content };
        if (token is not null) r.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return r;
    }

    [Fact]
    public async Task The_admin_api_answers_on_its_listener_only_even_on_the_same_port_number()
    {
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(Request(HttpMethod.Get, Admin + "/admin/cluster"))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.SendAsync(Request(HttpMethod.Get, Public + "/admin/cluster"))).StatusCode);
    }

    [Fact]
    public async Task Without_the_token_or_with_a_wrong_one_the_answer_is_401()
    {
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Request(HttpMethod.Get, Admin + "/admin/cluster", token: null))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Request(HttpMethod.Get, Admin + "/admin/cluster", token: "admin-secret-tokeX"))).StatusCode);
    }

    [Fact]
    public async Task A_cross_site_text_plain_post_is_refused_with_415()
    {
        using var http = new HttpClient();
        var csrf = Request(HttpMethod.Post, Admin + "/admin/cluster/down-unreachable", content: new StringContent("{}", Encoding.UTF8, "text/plain"));
        csrf.Headers.Add("Origin", "http://evil.example");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await http.SendAsync(csrf)).StatusCode);
        var json = Request(HttpMethod.Post, Admin + "/admin/cluster/down-unreachable", content: new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(json)).StatusCode);
    }

    [Fact]
    public async Task Admin_actions_are_logged_with_the_tokens_fingerprint_and_refused_ones_with_the_request_never_the_token()
    {
        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(AdminSecurityFixture.Token)))[..8];
        using var http = new HttpClient();
        var action = Request(HttpMethod.Post, Admin + "/admin/cluster/down-unreachable", content: new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(action)).StatusCode);
        var refused = Request(HttpMethod.Put, Admin + "/admin/topics/admin.audit/settings", token: "not-the-admin-token", content: new StringContent("{\"readOnly\":true}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(refused)).StatusCode);

        await Wait.UntilAsync(() => fixture.Log.Count("Broker.Admin", $"Admin API: POST /admin/cluster/down-unreachable by token {fingerprint} from ") >= 1
            && fixture.Log.Count("Broker.Admin", "Admin API: PUT /admin/topics/admin.audit/settings from ") == 1,
            "the action logged with the token's fingerprint, the refusal with its method and path", TimeSpan.FromSeconds(10));
        Assert.Contains("refused", fixture.Log.Lines.Single(l => l.Message.Contains("PUT /admin/topics/admin.audit/settings", StringComparison.Ordinal)).Message);
        Assert.DoesNotContain(fixture.Log.Lines, l => l.Message.Contains(AdminSecurityFixture.Token, StringComparison.Ordinal) || l.Message.Contains("not-the-admin-token", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_foreign_host_header_is_refused()
    {
        using var http = new HttpClient();
        var rebinding = Request(HttpMethod.Get, Admin + "/admin/cluster");
        rebinding.Headers.Host = "evil.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(rebinding)).StatusCode);
    }

    [Fact]
    public async Task Internal_endpoints_moved_to_the_admin_listener_leave_a_bare_readyz_on_the_public_one()
    {
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(Public + "/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(Public + "/api/cluster")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(Public + "/")).StatusCode); // the dashboard
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(Admin + "/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(Admin + "/api/cluster")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(Admin + "/")).StatusCode); // no admin token needed for the page
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string body;
        HttpResponseMessage ready;
        do
        {
            ready = await http.GetAsync(Public + "/readyz");
            body = await ready.Content.ReadAsStringAsync();
        } while (ready.StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline && await Task.Delay(200).ContinueWith(_ => true));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("{\"ready\":true}", body);
        Assert.Contains("kafka", await http.GetStringAsync(Admin + "/readyz"));
    }
}
