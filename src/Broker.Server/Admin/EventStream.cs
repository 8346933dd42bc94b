using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Broker.Server.Admin;

/// <summary>
/// Server-Sent Events for the admin API's streaming verbs (<c>cluster tail</c>, <c>log tail
/// --follow</c>): one JSON object per event (<c>data: {…}</c>), until the source ends, the client
/// goes away or the node stops. A source that ends with an error sends <c>{"error":"…"}</c> last.
/// </summary>
internal static class EventStream
{
    /// <param name="first">Items sent before those of <paramref name="source"/> (a backlog).</param>
    /// <param name="onEnd">Called once the stream ends, whatever the reason (stop the source there).</param>
    public static IResult Of<T>(HttpContext http, ChannelReader<T> source, Func<T, JsonNode> toJson, Action onEnd, IEnumerable<T>? first = null)
    {
        var stopping = http.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        return TypedResults.ServerSentEvents(Read(source, toJson, onEnd, first ?? [], http.RequestAborted, stopping));
    }

    private static async IAsyncEnumerable<string> Read<T>(ChannelReader<T> source, Func<T, JsonNode> toJson, Action onEnd, IEnumerable<T> first,
        CancellationToken aborted, CancellationToken stopping, [EnumeratorCancellation] CancellationToken enumeration = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted, stopping, enumeration);
        try
        {
            foreach (var item in first) yield return toJson(item).ToJsonString();
            while (true)
            {
                string? error = null;
                bool more;
                try
                {
                    more = await source.WaitToReadAsync(stop.Token);
                }
                catch (OperationCanceledException)
                {
                    yield break; // the client left or the node is stopping: end the response cleanly
                }
                catch (Exception e)
                {
                    more = false;
                    error = e.Message;
                }
                if (!more)
                {
                    if (error is not null) yield return new JsonObject { ["error"] = error }.ToJsonString();
                    yield break;
                }
                while (source.TryRead(out var item)) yield return toJson(item).ToJsonString();
            }
        }
        finally
        {
            onEnd();
        }
    }
}
