namespace Mdm.Kernels;

/// <summary>Which engine runs the kernels.</summary>
public enum BackendKind
{
    /// <summary>Hand-written CPU code on System.Numerics.Tensors: the fast path without a GPU.</summary>
    Cpu,
    /// <summary>The ILGPU kernels on an NVIDIA GPU.</summary>
    Cuda,
    /// <summary>The same ILGPU kernels on ILGPU's CPU accelerator: slow, used to check GPU kernels without a GPU.</summary>
    IlgpuCpu,
}

/// <summary>Facts about the device a backend runs on, for `info` and benchmark reports.</summary>
public sealed record DeviceInfo(BackendKind Kind, string Name, long MemoryBytes, int Multiprocessors, string Details)
{
    public string KindName => Backends.KindName(Kind);
    public override string ToString() =>
        $"{KindName,-9} {Name} | memory {MemoryBytes / (1024.0 * 1024 * 1024):F1} GiB | {(Kind == BackendKind.Cpu ? "cores" : "SMs")} {Multiprocessors}" +
        (Details.Length > 0 ? $" | {Details}" : "");
}
