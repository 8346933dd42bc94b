using Akka.Configuration;

namespace Broker.Server.Publish;

/// <summary>Limits of <c>POST /v1/publish</c> (HOCON <c>broker.http-publish</c>).</summary>
/// <param name="MaxBatch">Most publishes in one request (an array body); more is refused as a whole with 413 <c>too_large</c>.</param>
/// <param name="MaxBodyBytes">Largest request body; a larger one is refused with 413 <c>too_large</c>.</param>
public sealed record HttpPublishSettings(int MaxBatch, long MaxBodyBytes)
{
    public const string Section = "broker.http-publish";

    /// <summary>Binds and validates <c>broker.http-publish</c>; an invalid value fails with an error naming its key.</summary>
    public static HttpPublishSettings From(Config config)
    {
        var maxBatch = config.GetInt($"{Section}.max-batch");
        if (maxBatch < 1) throw new ConfigurationException($"{Section}.max-batch = {maxBatch}; at least 1");
        var maxBody = config.GetByteSize($"{Section}.max-body-bytes")
            ?? throw new ConfigurationException($"{Section}.max-body-bytes is required");
        if (maxBody < 1024) throw new ConfigurationException($"{Section}.max-body-bytes = {maxBody}; at least 1 KiB");
        return new HttpPublishSettings(maxBatch, maxBody);
    }
}
