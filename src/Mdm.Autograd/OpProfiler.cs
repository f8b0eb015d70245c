using System.Diagnostics;

namespace Mdm.Autograd;

/// <summary>
/// Opt-in per-op timing (MDM_PROFILE=1, or <see cref="Enabled"/>): forward time is the wall time since the previous
/// recorded op (so host work between ops is charged to the next op), backward time is each rule's wall time.
/// On an asynchronous device (CUDA) that is launch time, and waits land on whichever op happens to synchronise:
/// MDM_PROFILE=sync (or <see cref="SynchronizeDevice"/>) synchronises the device around every op, so each op is
/// charged its own device time (slower, but per-op numbers that mean something).
/// </summary>
public static class OpProfiler
{
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("MDM_PROFILE") is "1" or "sync";

    /// <summary>Synchronise the device before each op's time is taken (MDM_PROFILE=sync).</summary>
    public static bool SynchronizeDevice { get; set; } = Environment.GetEnvironmentVariable("MDM_PROFILE") == "sync";

    static readonly Dictionary<string, (double ForwardMs, double BackwardMs, long Count)> table = new();
    static readonly Stopwatch clock = Stopwatch.StartNew();
    static double last;

    internal static void Forward(string op)
    {
        if (!Enabled) return;
        double now = clock.Elapsed.TotalMilliseconds;
        lock (table)
        {
            table.TryGetValue(op, out var e);
            table[op] = (e.ForwardMs + (now - last), e.BackwardMs, e.Count + 1);
        }
        last = now;
    }

    /// <summary>Call before a region you do not want charged to the next op (e.g. data loading).</summary>
    public static void Mark() => last = clock.Elapsed.TotalMilliseconds;

    internal static void Backward(string op, double ms)
    {
        if (!Enabled) return;
        lock (table)
        {
            table.TryGetValue(op, out var e);
            table[op] = (e.ForwardMs, e.BackwardMs + ms, e.Count);
        }
    }

    public static void Reset() { lock (table) table.Clear(); Mark(); }

    public static string Report()
    {
        lock (table)
        {
            var rows = table.OrderByDescending(kv => kv.Value.ForwardMs + kv.Value.BackwardMs)
                .Select(kv => $"{kv.Key,-16} {kv.Value.Count,7} calls  forward {kv.Value.ForwardMs,9:F1} ms  backward {kv.Value.BackwardMs,9:F1} ms");
            return string.Join(Environment.NewLine, rows);
        }
    }
}
