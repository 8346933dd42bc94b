namespace Broker.Server.Configuration;

/// <summary>
/// The node cannot start for a reason the operator can fix (a configuration file that cannot be
/// read, a port in use): the message is one line saying what and which setting to change. The
/// host prints it and exits with <see cref="ExitCode"/>, without a stack trace.
/// </summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The process exit code of a configuration or environment problem (as for a bad value).</summary>
    public const int ExitCode = 2;
}
