using System.Runtime.InteropServices;

namespace Broker.Soak.Cluster;

/// <summary>POSIX signals to processes the soak started (always by PID).</summary>
public static class Signals
{
    public const int Kill = 9;
    public const int Term = 15;
    public const int Cont = 18;
    public const int Stop = 19;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when the process no longer exists.</summary>
    public static bool Send(int pid, int signal) => SendSignal(pid, signal) == 0;
}
