using Broker.Core.Settings;

namespace Broker.Server.Publish;

/// <summary>Limits of <c>POST /v1/publish</c> (HOCON <c>broker.http-publish</c>).</summary>
/// <param name="MaxBatch">Most publishes in one request (an array body); more is refused as a whole with 413 <c>too_large</c>.</param>
/// <param name="MaxBodyBytes">Largest request body; a larger one is refused with 413 <c>too_large</c>.</param>
public sealed record HttpPublishSettings(int MaxBatch, long MaxBodyBytes)
{
    /// <summary>The HOCON section (named in refusals).</summary>
    public const string Section = "broker.http-publish";

    /// <summary>Binds and validates <c>broker.http-publish</c>.</summary>
    public static HttpPublishSettings Bind(SettingsReader r) => new(
        r.Int($"{Section}.max-batch", 1),
        r.Bytes($"{Section}.max-body-bytes", 1024));
}
