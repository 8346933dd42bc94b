using Broker.Client;

namespace Broker.Soak.Clients;

/// <summary>What happened to one client's connections: disconnects by close code (1006 = dropped without a close).</summary>
public sealed class ConnectionStats
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, int> _byCode = [];

    public void Attach(BrokerClient client) => client.StateChanged += (_, e) =>
    {
        if (e.State == BrokerConnectionState.Disconnected && e.Attempt == 0) Count(e.CloseCode ?? 1006);
    };

    public void Count(int code)
    {
        lock (_gate) _byCode[code] = _byCode.GetValueOrDefault(code) + 1;
    }

    public IReadOnlyDictionary<int, int> ByCode
    {
        get { lock (_gate) return new Dictionary<int, int>(_byCode); }
    }

    public int Total
    {
        get { lock (_gate) return _byCode.Values.Sum(); }
    }
}
