using System.Runtime.InteropServices;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// POSIX signals to processes a test started (by PID): the fault injection of the failure tests.
/// Shared with the chaos soak (bench/soak links this file).
/// </summary>
internal static class Signals
{
    public const int Kill = 9;
    public const int Term = 15;
    public const int Cont = 18;
    public const int Stop = 19;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; throws when the process does not exist.</summary>
    public static void Send(int pid, int signal)
    {
        if (SendSignal(pid, signal) != 0)
            throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when the process no longer exists (it may exit meanwhile).</summary>
    public static bool TrySend(int pid, int signal) => SendSignal(pid, signal) == 0;

    /// <summary>SIGSTOP: the process is frozen (its sockets stay open, nothing is read or answered) until <see cref="Resume"/>.</summary>
    public static void Freeze(int pid) => Send(pid, Stop);

    /// <summary>SIGCONT after <see cref="Freeze"/>.</summary>
    public static void Resume(int pid) => Send(pid, Cont);
}
