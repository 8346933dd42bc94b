using System.Runtime.InteropServices;

namespace Broker.DevKafka;

/// <summary>
/// Locates and loads the librdkafka build that works on glibc distributions without
/// libsasl2.so.3 (the "centos8" variant shipped in librdkafka.redist), for both our own
/// P/Invoke calls and Confluent.Kafka.
/// </summary>
/// <remarks>
/// Confluent.Kafka binds its functions through [DllImport("librdkafka")] (or "centos8-librdkafka",
/// "alpine-librdkafka"), and <c>Library.Load(path)</c> alone does not change what those names resolve
/// to. We therefore install a DllImport resolver on the Confluent.Kafka assembly that hands out our
/// handle for all of them, so Confluent and our P/Invoke share one instance of the library.
/// The resolver also maps "libdl" (used by Confluent's own dlopen) to "libdl.so.2", since glibc
/// distributions without dev packages ship no unversioned libdl.so.
/// This only works if <see cref="EnsureLoaded"/> runs before the first Confluent.Kafka client is
/// created; afterwards Confluent's bindings are fixed.
/// </remarks>
public static class NativeLibrdkafka
{
    private const string FileName = "centos8-librdkafka.so";
    private static readonly Lock Gate = new();
    private static string? _path;
    private static IntPtr _handle;

    /// <summary>Loads the library once (idempotent, thread-safe); returns its path.</summary>
    public static string EnsureLoaded()
    {
        lock (Gate)
        {
            if (_path is not null)
                return _path;

            var path = FindLibrary();
            _handle = NativeLibrary.Load(path);
            var confluent = typeof(Confluent.Kafka.Library).Assembly;
            if (!Confluent.Kafka.Library.IsLoaded)
            {
                NativeLibrary.SetDllImportResolver(confluent, Resolve);
                Confluent.Kafka.Library.Load(path);
            }
            _path = path;
            return path;
        }
    }

    /// <summary>Address of a required export.</summary>
    internal static IntPtr Export(string name)
    {
        EnsureLoaded();
        return NativeLibrary.GetExport(_handle, name);
    }

    /// <summary>Address of an export that older/newer builds may lack, or zero.</summary>
    internal static IntPtr OptionalExport(string name)
    {
        EnsureLoaded();
        return NativeLibrary.TryGetExport(_handle, name, out var address) ? address : IntPtr.Zero;
    }

    private static IntPtr Resolve(string name, System.Reflection.Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name.EndsWith("librdkafka", StringComparison.Ordinal))
            return _handle;
        if (name == "libdl")
            return NativeLibrary.TryLoad("libdl.so.2", out var dl) ? dl : NativeLibrary.Load("libc.so.6");
        return IntPtr.Zero; // default probing
    }

    private static string FindLibrary()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            throw new PlatformNotSupportedException(
                $"{FileName} is only shipped for linux-x64 (this is {RuntimeInformation.RuntimeIdentifier}).");

        var relative = Path.Combine("runtimes", "linux-x64", "native", FileName);
        var candidates = new List<string> { Path.Combine(AppContext.BaseDirectory, relative) };

        // librdkafka.redist is versioned in lockstep with Confluent.Kafka.
        var v = typeof(Confluent.Kafka.Library).Assembly.GetName().Version!;
        var redist = Path.Combine("librdkafka.redist", $"{v.Major}.{v.Minor}.{v.Build}", relative);
        var nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (!string.IsNullOrEmpty(nugetRoot))
            candidates.Add(Path.Combine(nugetRoot, redist));
        candidates.Add(Path.Combine(
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages", redist));

        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException(
                $"{FileName} not found; looked in: {string.Join(", ", candidates)}");
    }
}
