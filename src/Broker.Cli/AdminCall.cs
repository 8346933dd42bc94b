using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Broker.Cli;

/// <summary>
/// One verb's call to a node's admin API: the request, the error handling every verb shares
/// (unreachable node, refused request, an answer that is incomplete) and the output (a table,
/// or the API's JSON with <c>--json</c>).
/// </summary>
internal sealed record AdminCall(ParseResult Parse, string Endpoint, string? Token, bool Json, TextWriter Out, TextWriter Err, CancellationToken Cancel)
{
    public Task<int> Get(string path, Action<IAnsiConsole, JsonNode> show, Func<JsonNode, string?>? check = null) =>
        Send(HttpMethod.Get, path, null, show, check);

    public Task<int> Post(string path, JsonNode body, Action<IAnsiConsole, JsonNode> show) => Send(HttpMethod.Post, path, body, show, null);

    public Task<int> Put(string path, JsonNode body, Action<IAnsiConsole, JsonNode> show) => Send(HttpMethod.Put, path, body, show, null);

    /// <param name="check">A problem the answer reveals (printed, exit 1), e.g. a cluster without a leader.</param>
    private async Task<int> Send(HttpMethod method, string path, JsonNode? body, Action<IAnsiConsole, JsonNode> show, Func<JsonNode, string?>? check)
    {
        if (!TryUri(path, out var uri)) return await InvalidEndpoint();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        using var request = Request(method, uri);
        if (body is not null) request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        HttpResponseMessage response;
        string text;
        try
        {
            response = await http.SendAsync(request, Cancel);
            text = await response.Content.ReadAsStringAsync(Cancel);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !Cancel.IsCancellationRequested)
        {
            return await Unreachable(e);
        }
        using (response)
        {
            JsonNode? node = null;
            try { node = JsonNode.Parse(text); } catch (JsonException) { /* not JSON */ }
            if (!response.IsSuccessStatusCode) return await Refused(response, node, text);
            if (node is null)
            {
                await Err.WriteLineAsync($"error: {Endpoint} answered with something that is not JSON; is it a broker admin port?");
                return BrokerCtl.ExitRefused;
            }
            if (Json)
                await Out.WriteLineAsync(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            else
                show(Views.Console(Out), node);
            if (check?.Invoke(node) is { } problem)
            {
                await Err.WriteLineAsync($"error: {problem}");
                return BrokerCtl.ExitRefused;
            }
            // The node answered, but not for everyone: say who is missing, and exit 3.
            if (node["errors"] is JsonArray { Count: > 0 } errors)
            {
                await Err.WriteLineAsync($"INCOMPLETE: {errors.Count} part(s) of the cluster did not answer; the output above leaves them out:");
                foreach (var e in errors) await Err.WriteLineAsync($"  {Views.S(e)}");
                return BrokerCtl.ExitIncomplete;
            }
            return 0;
        }
    }

    /// <summary>
    /// Follows a Server-Sent Events stream of the admin API, printing each event (one JSON object)
    /// as it arrives, until Ctrl+C (exit 0), the node ends the stream or the connection is lost (exit 2).
    /// </summary>
    public async Task<int> Stream(string path, Action<TextWriter, JsonNode> show)
    {
        if (!TryUri(path, out var uri)) return await InvalidEndpoint();
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        using var request = Request(HttpMethod.Get, uri);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Cancel);
        }
        catch (OperationCanceledException) when (Cancel.IsCancellationRequested)
        {
            return 0;
        }
        catch (HttpRequestException e)
        {
            return await Unreachable(e);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var text = await response.Content.ReadAsStringAsync(Cancel);
                JsonNode? node = null;
                try { node = JsonNode.Parse(text); } catch (JsonException) { /* not JSON */ }
                return await Refused(response, node, text);
            }
            try
            {
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Cancel));
                var data = new StringBuilder();
                while (await reader.ReadLineAsync(Cancel) is { } line)
                {
                    if (line.StartsWith("data:", StringComparison.Ordinal))
                    {
                        if (data.Length > 0) data.Append('\n');
                        data.Append(line.AsSpan(5).TrimStart(' '));
                        continue;
                    }
                    if (line.Length > 0 || data.Length == 0) continue; // comments, other fields
                    var item = JsonNode.Parse(data.ToString());
                    data.Clear();
                    if (item?["error"] is { } error)
                    {
                        await Err.WriteLineAsync($"error: {Views.S(error)}");
                        return BrokerCtl.ExitRefused;
                    }
                    if (item is null) continue;
                    if (Json) await Out.WriteLineAsync(item.ToJsonString());
                    else show(Out, item);
                    await Out.FlushAsync(Cancel);
                }
            }
            catch (OperationCanceledException) when (Cancel.IsCancellationRequested)
            {
                return 0;
            }
            catch (Exception e) when (e is IOException or HttpRequestException or JsonException)
            {
                await Err.WriteLineAsync($"the stream from {Endpoint} broke: {e.Message}");
                return BrokerCtl.ExitUnreachable;
            }
            if (Cancel.IsCancellationRequested) return 0;
            await Err.WriteLineAsync($"{Endpoint} ended the stream (is the node stopping?)");
            return BrokerCtl.ExitUnreachable;
        }
    }

    private bool TryUri(string path, out Uri uri) => Uri.TryCreate(Endpoint.TrimEnd('/') + path, UriKind.Absolute, out uri!);

    private HttpRequestMessage Request(HttpMethod method, Uri uri)
    {
        var request = new HttpRequestMessage(method, uri);
        if (!string.IsNullOrEmpty(Token)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        return request;
    }

    private async Task<int> InvalidEndpoint()
    {
        await Err.WriteLineAsync($"error: invalid --endpoint '{Endpoint}' (expected e.g. {BrokerCtl.DefaultEndpoint})");
        return BrokerCtl.ExitRefused;
    }

    private async Task<int> Unreachable(Exception e)
    {
        await Err.WriteLineAsync($"cannot reach the broker admin API at {Endpoint}: {e.Message}");
        await Err.WriteLineAsync("Is the node running, and is --endpoint (env BROKERCTL_ENDPOINT) its broker.admin host and port?");
        return BrokerCtl.ExitUnreachable;
    }

    private async Task<int> Refused(HttpResponseMessage response, JsonNode? node, string text)
    {
        var message = node?["error"]?.GetValue<string>() ?? (text.Length > 0 ? text : response.ReasonPhrase);
        await Err.WriteLineAsync($"error: {(int)response.StatusCode} {message}");
        if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized)
            await Err.WriteLineAsync("The admin API needs a token: pass --token (env BROKERCTL_TOKEN or BROKERCTL_TOKEN_FILE).");
        return BrokerCtl.ExitRefused;
    }
}
