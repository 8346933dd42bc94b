using System.Text;

namespace Broker.IntegrationTests.Infrastructure;

/// <summary>
/// A <see cref="TextWriter"/> for a command that keeps printing (brokerctl's streaming verbs):
/// collects complete lines as they are written and lets a test wait for one that matches.
/// </summary>
public sealed class LineWriter : TextWriter
{
    private readonly StringBuilder _partial = new();
    private readonly List<string> _lines = [];
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override Encoding Encoding => Encoding.UTF8;

    public IReadOnlyList<string> Lines
    {
        get { lock (_gate) return [.. _lines]; }
    }

    public override void Write(char value)
    {
        TaskCompletionSource? changed = null;
        lock (_gate)
        {
            if (value == '\n')
            {
                _lines.Add(_partial.ToString().TrimEnd('\r'));
                _partial.Clear();
                changed = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            else
            {
                _partial.Append(value);
            }
        }
        changed?.TrySetResult();
    }

    /// <summary>The first line (from the start) that matches; fails the test after <paramref name="timeout"/> with what was printed.</summary>
    public async Task<string> WaitForAsync(Func<string, bool> match, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_lines.FirstOrDefault(match) is { } line) return line;
                changed = _changed.Task;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !ReferenceEquals(await Task.WhenAny(changed, Task.Delay(left)), changed))
                Assert.Fail($"no line {what} within {timeout.TotalSeconds:0}s; printed:\n{string.Join('\n', Lines)}");
        }
    }
}
