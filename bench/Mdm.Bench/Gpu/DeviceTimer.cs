using Mdm.Kernels.Gpu;

namespace Mdm.Bench.Gpu;

/// <summary>Mean device time of a launch sequence: warm-up runs, then CUDA events (ILGPU profiling markers) around
/// <paramref name="reps"/> runs on the default stream.</summary>
public static class DeviceTimer
{
    public static double MeanMs(IlgpuBackend b, Action run, int warmup, int reps)
    {
        for (int i = 0; i < warmup; i++) run();
        b.Synchronize();
        var stream = b.Accelerator.DefaultStream;
        var start = stream.AddProfilingMarker();
        for (int i = 0; i < reps; i++) run();
        var end = stream.AddProfilingMarker();
        b.Synchronize();
        double ms = end.MeasureFrom(start).TotalMilliseconds / reps;
        start.Dispose(); end.Dispose();
        return ms;
    }
}
