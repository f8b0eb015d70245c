using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime.Cuda;
using Mdm.Kernels.Cpu;
using Mdm.Kernels.Gpu;

namespace Mdm.Kernels;

/// <summary>Choosing and creating backends: CUDA when a usable NVIDIA GPU is present, else CPU; MDM_DEVICE overrides.</summary>
public static class Backends
{
    /// <summary>Environment variable that forces a backend: cpu, cuda or ilgpu-cpu.</summary>
    public const string EnvironmentVariable = "MDM_DEVICE";
    public static readonly string[] Names = ["cpu", "cuda", "ilgpu-cpu"];

    public static string KindName(BackendKind kind) => kind switch
    {
        BackendKind.Cpu => "cpu", BackendKind.Cuda => "cuda", BackendKind.IlgpuCpu => "ilgpu-cpu", _ => kind.ToString(),
    };

    public static BackendKind Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "cpu" => BackendKind.Cpu,
        "cuda" or "gpu" => BackendKind.Cuda,
        "ilgpu-cpu" or "ilgpucpu" => BackendKind.IlgpuCpu,
        _ => throw new ArgumentException($"unknown device '{name}': expected one of {string.Join(", ", Names)}"),
    };

    /// <param name="cudaDevice">Which GPU (modulo the count): a data-parallel rank passes its local rank.</param>
    public static Backend Create(BackendKind kind, int cudaDevice = 0) => kind switch
    {
        BackendKind.Cpu => new CpuBackend(),
        BackendKind.Cuda => IlgpuBackend.CreateCuda(cudaDevice),
        BackendKind.IlgpuCpu => IlgpuBackend.CreateCpuAccelerator(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The backend named by <paramref name="name"/>, else by MDM_DEVICE, else CUDA if usable, else CPU.</summary>
    public static Backend CreateDefault(string? name = null, int cudaDevice = 0)
    {
        name ??= Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(name) && name.Trim().ToLowerInvariant() != "auto") return Create(Parse(name), cudaDevice);
        return CudaStatus().Available ? Create(BackendKind.Cuda, cudaDevice) : new CpuBackend();
    }

    static readonly Lazy<(bool, string)> cudaStatus = new(ProbeCuda);

    /// <summary>Whether a CUDA device is usable, and if not, why (shown in skipped GPU tests and in `info`).</summary>
    public static (bool Available, string Reason) CudaStatus() => cudaStatus.Value;

    static (bool, string) ProbeCuda()
    {
        try
        {
            RegisterCudaResolver();
            using var context = Context.Create(b => b.Cuda());
            var devices = context.GetCudaDevices();
            return devices.Count > 0
                ? (true, $"{devices.Count} CUDA device(s): {devices[0].Name}")
                : (false, "no CUDA device found (libcuda.so.1 not loadable or no NVIDIA GPU visible)");
        }
        catch (Exception e) { return (false, $"CUDA unavailable: {e.GetType().Name}: {e.Message}"); }
    }

    static int resolverRegistered;

    /// <summary>
    /// ILGPU P/Invokes "cuda", which .NET probes as libcuda.so; driver-only installs ship just libcuda.so.1.
    /// Safe to call many times; must run before ILGPU first touches the driver.
    /// </summary>
    public static void RegisterCudaResolver()
    {
        if (Interlocked.Exchange(ref resolverRegistered, 1) == 1) return;
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Context).Assembly, Resolve);
            NativeLibrary.SetDllImportResolver(typeof(Backends).Assembly, Resolve);
        }
        catch (InvalidOperationException) { /* someone registered one already (ILGPU does under WSL) */ }
    }

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name is not ("cuda" or "nvcuda" or "libcuda")) return IntPtr.Zero;
        foreach (var candidate in new[] { "libcuda.so.1", "libcuda.so" })
            if (NativeLibrary.TryLoad(candidate, out var handle)) return handle;
        return IntPtr.Zero;
    }
}
