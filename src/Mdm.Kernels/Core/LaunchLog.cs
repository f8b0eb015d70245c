namespace Mdm.Kernels;

/// <summary>
/// The device time of every kernel launch in a region, for per-kernel profiles. While a log is open, the ILGPU
/// backends bracket each launch with two stream markers (CUDA events on a GPU, host timestamps on the CPU accelerator)
/// without synchronising the host; the times are read when the log closes. Launches are charged to the op named by
/// the next <see cref="Attribute"/> call (autograd names an op after its forward kernels ran). Flop counts announced
/// with <see cref="CountFlops"/> go to the next launch, or to the op when no launch follows (the CPU backend).
/// </summary>
public sealed class LaunchLog : IDisposable
{
    /// <summary>One launch: its op, its catalogue name, device milliseconds, bytes of its tensor arguments, flops.</summary>
    public readonly record struct Entry(string Op, string Kernel, double Milliseconds, long Bytes, double Flops);

    sealed class Pending(string kernel, Func<double> measure, IDisposable[] markers, long bytes, double flops)
    {
        public readonly string Kernel = kernel;
        public readonly Func<double> Measure = measure;
        public readonly IDisposable[] Markers = markers;
        public readonly long Bytes = bytes;
        public readonly double Flops = flops;
        public string? Op;
    }

    static LaunchLog? active;
    readonly List<Pending> launches = new();
    readonly object gate = new();
    int unattributed;
    double pendingFlops;
    bool closed;

    LaunchLog() { }

    /// <summary>The open log, or null (the common case: backends then skip all of this).</summary>
    public static LaunchLog? Active => Volatile.Read(ref active);

    /// <summary>Opens the process-wide log; one at a time.</summary>
    public static LaunchLog Open()
    {
        var log = new LaunchLog();
        if (Interlocked.CompareExchange(ref active, log, null) is not null)
            throw new InvalidOperationException("LaunchLog.Open: a launch log is already open (profiles do not nest)");
        return log;
    }

    /// <summary>Announces the flops of the work about to be launched (2·M·N·K for a GEMM).</summary>
    public static void CountFlops(double flops)
    {
        if (Active is { } log) lock (log.gate) log.pendingFlops += flops;
    }

    /// <summary>Called by a backend after a launch: <paramref name="measure"/> returns its device milliseconds once the
    /// stream has passed it; <paramref name="markers"/> are released when the log closes.</summary>
    public void Add(string kernel, Func<double> measure, IDisposable[] markers, long bytes)
    {
        lock (gate)
        {
            launches.Add(new Pending(kernel, measure, markers, bytes, pendingFlops));
            pendingFlops = 0;
        }
    }

    /// <summary>Charges every launch since the previous call to <paramref name="op"/>; returns the flops announced but
    /// not followed by a launch (work the CPU backend did on the host).</summary>
    public double Attribute(string op)
    {
        lock (gate)
        {
            for (int i = unattributed; i < launches.Count; i++) launches[i].Op = op;
            unattributed = launches.Count;
            double rest = pendingFlops;
            pendingFlops = 0;
            return rest;
        }
    }

    /// <summary>Waits for the stream to pass every marker, reads the times and closes the log. Launches no op claimed
    /// are charged to <paramref name="unclaimedOp"/>.</summary>
    public IReadOnlyList<Entry> Close(string unclaimedOp)
    {
        lock (gate)
        {
            if (closed) throw new InvalidOperationException("LaunchLog.Close: already closed");
            closed = true;
            Attribute(unclaimedOp);
            var entries = new List<Entry>(launches.Count);
            foreach (var l in launches) entries.Add(new Entry(l.Op!, l.Kernel, l.Measure(), l.Bytes, l.Flops));
            Release();
            return entries;
        }
    }

    void Release()
    {
        foreach (var l in launches)
            foreach (var m in l.Markers) m.Dispose();
        launches.Clear();
        Interlocked.CompareExchange(ref active, null, this);
    }

    public void Dispose()
    {
        lock (gate)
        {
            if (closed) return;
            closed = true;
            Release();
        }
    }
}
