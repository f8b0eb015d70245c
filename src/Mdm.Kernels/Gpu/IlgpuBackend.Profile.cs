using ILGPU;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

// Launch profiling: while a LaunchLog is open, a stream marker goes before and after each launch (no host sync).
public sealed partial class IlgpuBackend
{
    readonly Dictionary<System.Reflection.MethodInfo, string> catalogueNames = new();

    ProfilingMarker? MarkLaunch()
    {
        if (capturing is not null) { capturing.Launches++; return null; }   // a captured launch is timed by its graph's replay
        return LaunchLog.Active is null ? null : accelerator.DefaultStream.AddProfilingMarker();
    }

    void Launched(ProfilingMarker start, Delegate kernel, long bytes)
    {
        var end = accelerator.DefaultStream.AddProfilingMarker();
        string name = catalogueNames.TryGetValue(kernel.Method, out var n) ? n : kernel.Method.Name;
        LaunchLog.Active?.Add(name, () => { end.Synchronize(); return end.MeasureFrom(start).TotalMilliseconds; }, [start, end], bytes);
    }

    /// <summary>Bytes of a tensor argument (a view); scalars and parameter structs count 0.</summary>
    static long Bytes<T>(T argument) where T : struct => argument is IArrayView view ? view.LengthInBytes : 0;
}
