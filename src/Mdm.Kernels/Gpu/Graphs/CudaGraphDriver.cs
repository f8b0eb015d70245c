using System.Runtime.InteropServices;

namespace Mdm.Kernels.Gpu.Graphs;

/// <summary>
/// The CUDA driver's stream-capture and graph calls, bound by P/Invoke as the conv loader binds cuFuncSetAttribute
/// ("libcuda.so.1" is found by <see cref="Backends.RegisterCudaResolver"/>'s resolver or the loader's own search).
/// Return values are CUresult codes (0 = success).
/// </summary>
static class CudaGraphDriver
{
    const string Library = "libcuda.so.1";

    /// <summary>CU_STREAM_CAPTURE_MODE_RELAXED: this thread may still make calls that are unsafe during a capture;
    /// the backend itself refuses host reads and device allocations while capturing.</summary>
    public const int CaptureModeRelaxed = 2;

    /// <summary>CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: something in the captured region broke the capture.</summary>
    public const int ErrorCaptureInvalidated = 901;

    [DllImport(Library, EntryPoint = "cuStreamBeginCapture_v2")]
    public static extern int cuStreamBeginCapture(IntPtr stream, int mode);

    [DllImport(Library)]
    public static extern int cuStreamEndCapture(IntPtr stream, out IntPtr graph);

    [DllImport(Library)]
    public static extern int cuGraphInstantiateWithFlags(out IntPtr graphExec, IntPtr graph, ulong flags);

    [DllImport(Library)]
    public static extern int cuGraphLaunch(IntPtr graphExec, IntPtr stream);

    [DllImport(Library)]
    public static extern int cuGraphExecDestroy(IntPtr graphExec);

    [DllImport(Library)]
    public static extern int cuGraphDestroy(IntPtr graph);

    [DllImport(Library)]
    public static extern int cuDriverGetVersion(out int version);

    [DllImport(Library)]
    static extern int cuGetErrorName(int error, out IntPtr name);

    /// <summary>cuGraphInstantiateWithFlags needs CUDA 11.4.</summary>
    public const int MinimumDriverVersion = 11040;

    /// <summary>Null when this driver can capture and instantiate graphs, else why not.</summary>
    public static string? Unsupported()
    {
        try
        {
            int rc = cuDriverGetVersion(out int version);
            if (rc != 0) return $"cuDriverGetVersion failed with {ErrorName(rc)}";
            if (version < MinimumDriverVersion)
                return $"the CUDA driver is {version / 1000}.{version % 1000 / 10}, graphs here need {MinimumDriverVersion / 1000}.{MinimumDriverVersion % 1000 / 10}";
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return $"the CUDA driver API is not available ({e.GetType().Name}: {e.Message})";
        }
    }

    /// <summary>"CUDA_ERROR_… (code)" for a CUresult.</summary>
    public static string ErrorName(int rc)
    {
        try
        {
            if (cuGetErrorName(rc, out var p) == 0 && p != IntPtr.Zero) return $"{Marshal.PtrToStringAnsi(p)} ({rc})";
        }
        catch (EntryPointNotFoundException) { }
        return $"CUDA error {rc}";
    }
}
