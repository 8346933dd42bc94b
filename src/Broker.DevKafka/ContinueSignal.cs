using System.Runtime.InteropServices;

namespace Broker.DevKafka;

/// <summary>
/// The mock cluster's thread ends for good when its <c>poll()</c> fails, and <c>poll()</c> fails with
/// EINTR when the process is continued after SIGSTOP (a debugger, <c>kill -STOP</c>, the chaos
/// soak's "log paused") while a SIGCONT handler is installed — which the .NET runtime does (it
/// restores terminal settings on continue). With the default disposition the kernel restarts the
/// interrupted call instead. A process that hosts the mock cluster needs no terminal handling on
/// SIGCONT, so <see cref="UseDefault"/> gives SIGCONT its default disposition once.
/// </summary>
internal static partial class ContinueSignal
{
    private const int SigCont = 18; // Linux
    private static int _done;

    public static void UseDefault()
    {
        if (!OperatingSystem.IsLinux() || Interlocked.Exchange(ref _done, 1) == 1) return;
        Signal(SigCont, IntPtr.Zero); // SIG_DFL
    }

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial IntPtr Signal(int signum, IntPtr handler);
}
