using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// Where the time of a region (one training step) goes, per op and kernel. On the ILGPU backends every launch is timed
/// on the device by stream markers (<see cref="LaunchLog"/>), without synchronising the host, and charged to the op
/// whose forward or backward launched it. The CPU backend runs synchronously, so there each op's host time is taken
/// instead (kernel column "host"), with the process's CPU time (user + sys, all threads) beside it: on a shared box
/// the CPU time counts the work done while the wall time follows the load. Work outside autograd is charged with
/// <see cref="Charge"/> (the optimizer, EMA).
/// </summary>
public sealed class StepProfile : IDisposable
{
    static StepProfile? active;
    readonly Backend backend;
    readonly LaunchLog log;
    readonly Stopwatch wall = Stopwatch.StartNew();
    readonly List<LaunchLog.Entry> hostEntries = new();
    readonly Dictionary<string, double> cpuMs = new();
    double lastMark, lastCpuMark;

    StepProfile(Backend backend)
    {
        this.backend = backend;
        backend.Synchronize();
        log = LaunchLog.Open();
        wall.Restart();
        lastCpuMark = ProcessCpuMilliseconds();
    }

    static double ProcessCpuMilliseconds() => Environment.CpuUsage.TotalTime.TotalMilliseconds;

    /// <summary>Starts profiling on <paramref name="backend"/>; one profile at a time.</summary>
    public static StepProfile Start(Backend backend)
    {
        var p = new StepProfile(backend);
        active = p;
        return p;
    }

    bool HostTimed => backend.Kind == BackendKind.Cpu;

    /// <summary>Charges the work since the previous charge to <paramref name="op"/>.</summary>
    public void Charge(string op)
    {
        double flops = log.Attribute(op);
        if (!HostTimed) return;
        double now = wall.Elapsed.TotalMilliseconds;
        hostEntries.Add(new LaunchLog.Entry(op, "host", now - lastMark, 0, flops));
        lastMark = now;
        double cpuNow = ProcessCpuMilliseconds();
        cpuMs[op] = cpuMs.GetValueOrDefault(op) + (cpuNow - lastCpuMark);
        lastCpuMark = cpuNow;
    }

    /// <summary>Autograd's hook: an op's forward has run, or a node's backward rule and its accumulation.</summary>
    internal static void OpDone(string op) => active?.Charge(op);

    /// <summary>Waits for the device, reads every launch's time and returns the table; the rest of the region is
    /// charged to <paramref name="rest"/>.</summary>
    public ProfileTable Finish(string rest = "(outside ops)")
    {
        Charge(rest);
        backend.Synchronize();
        double wallMs = wall.Elapsed.TotalMilliseconds;
        active = null;
        var launches = log.Close(rest);
        return ProfileTable.From(HostTimed ? hostEntries : launches, wallMs, backend.Info.Name, HostTimed, HostTimed ? cpuMs : null);
    }

    public void Dispose()
    {
        if (ReferenceEquals(active, this)) active = null;
        log.Dispose();
    }
}

/// <summary>One row: an op's launches of one kernel, their summed time, bytes and flops.</summary>
public sealed record ProfileRow(string Op, string Kernel, int Launches, double Milliseconds, double Percent, long Bytes, double Flops)
{
    /// <summary>Process CPU time (user + sys, all threads) charged to the op; host-timed profiles only, else NaN.</summary>
    public double CpuMilliseconds { get; init; } = double.NaN;

    /// <summary>Bytes of the launches' tensor arguments over their time (each argument counted once per launch).</summary>
    public double GigabytesPerSecond => Milliseconds > 0 ? Bytes / (Milliseconds * 1e6) : 0;
    public double TeraflopsPerSecond => Milliseconds > 0 ? Flops / (Milliseconds * 1e9) : 0;
}

/// <summary>A finished profile: rows by time, the sum of their times and the region's wall time.</summary>
public sealed class ProfileTable
{
    public required IReadOnlyList<ProfileRow> Rows { get; init; }
    /// <summary>Σ of the rows: device-busy time on ILGPU backends, host time on the CPU backend.</summary>
    public double TotalMilliseconds { get; init; }
    public double WallMilliseconds { get; init; }
    public required string Device { get; init; }
    public bool HostTimed { get; init; }

    /// <summary>Σ of the rows' process CPU time; NaN unless host-timed.</summary>
    public double CpuMilliseconds { get; init; } = double.NaN;

    internal static ProfileTable From(IReadOnlyList<LaunchLog.Entry> entries, double wallMs, string device, bool hostTimed,
        IReadOnlyDictionary<string, double>? cpuMsByOp = null)
    {
        double total = entries.Sum(e => e.Milliseconds);
        var rows = entries.GroupBy(e => (e.Op, e.Kernel))
            .Select(g => new ProfileRow(g.Key.Op, g.Key.Kernel, g.Count(), g.Sum(e => e.Milliseconds),
                total > 0 ? 100 * g.Sum(e => e.Milliseconds) / total : 0, g.Sum(e => e.Bytes), g.Sum(e => e.Flops))
                { CpuMilliseconds = cpuMsByOp?.GetValueOrDefault(g.Key.Op, 0) ?? double.NaN })
            .OrderByDescending(r => cpuMsByOp != null ? r.CpuMilliseconds : r.Milliseconds).ToList();
        double cpuTotal = cpuMsByOp?.Values.Sum() ?? double.NaN;
        return new ProfileTable { Rows = rows, TotalMilliseconds = total, WallMilliseconds = wallMs, Device = device, HostTimed = hostTimed, CpuMilliseconds = cpuTotal };
    }

    /// <summary>The table as text: the <paramref name="top"/> heaviest rows, then one line for the rest.</summary>
    public string Format(int top = 40)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"{(HostTimed ? "host" : "device")} time per op and kernel on {Device}: Σ {TotalMilliseconds:F2} ms of {WallMilliseconds:F2} ms wall{(HostTimed ? $", process CPU time Σ {CpuMilliseconds:F1} ms (rows by CPU time)" : "")}");
        sb.AppendLine(c, $"{"op",-26} {"kernel",-34} {(HostTimed ? "calls" : "launches"),8} {"ms",10} {"%",6} {"GB/s",8} {"TFLOP/s",8}{(HostTimed ? $" {"CPU ms",9} {"CPU %",6}" : "")}");
        foreach (var r in Rows.Take(top))
            sb.AppendLine(c, $"{Clip(r.Op, 26),-26} {Clip(r.Kernel, 34),-34} {r.Launches,8} {r.Milliseconds,10:F3} {r.Percent,6:F1} {Rate(r.GigabytesPerSecond, r.Bytes > 0),8} {Rate(r.TeraflopsPerSecond, r.Flops > 0),8}{(HostTimed ? $" {r.CpuMilliseconds,9:F1} {(CpuMilliseconds > 0 ? 100 * r.CpuMilliseconds / CpuMilliseconds : 0),6:F1}" : "")}");
        if (Rows.Count > top)
        {
            var rest = Rows.Skip(top).ToList();
            sb.AppendLine(c, $"{$"({rest.Count} more rows)",-26} {"",-34} {rest.Sum(r => r.Launches),8} {rest.Sum(r => r.Milliseconds),10:F3} {rest.Sum(r => r.Percent),6:F1}");
        }
        sb.Append("GB/s = bytes of the launch's tensor arguments / time; TFLOP/s = 2·multiply-adds (GEMM 2·M·N·K, attention 4·B·H·Nq·Nk·D forward) / time");
        return sb.ToString();
    }

    static string Rate(double value, bool known) => known ? value.ToString(value >= 100 ? "F0" : value >= 1 ? "F2" : "G3", CultureInfo.InvariantCulture) : "-";
    static string Clip(string s, int width) => s.Length <= width ? s : s[..(width - 1)] + "…";
}
