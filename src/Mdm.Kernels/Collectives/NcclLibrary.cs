using System.Runtime.InteropServices;

namespace Mdm.Kernels.Collectives;

/// <summary>NCCL's unique id: 128 opaque bytes made by one rank and broadcast to the others (ncclUniqueId).</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
unsafe struct NcclUniqueId
{
    public const int Bytes = 128;
    public fixed byte Data[Bytes];
}

/// <summary>The NCCL entry points the collectives use, bound at run time from libnccl.so.2 (PyTorch's wheels and
/// NVIDIA's packages ship it; MDM_NCCL_LIBRARY names another file).</summary>
sealed unsafe class NcclLibrary
{
    public const string DefaultFile = "libnccl.so.2";
    public const int Success = 0;
    /// <summary>ncclFloat32, ncclSum and ncclAvg in nccl.h.</summary>
    public const int Float32 = 7, OpSum = 0, OpAvg = 4;
    /// <summary>ncclAvg needs NCCL 2.10 (version code 21000).</summary>
    public const int MinimumVersion = 21000;

    public readonly string File;
    public readonly delegate* unmanaged<int*, int> GetVersion;
    public readonly delegate* unmanaged<NcclUniqueId*, int> GetUniqueId;
    public readonly delegate* unmanaged<nint*, int, NcclUniqueId, int, int> CommInitRank;
    public readonly delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> AllReduce;
    public readonly delegate* unmanaged<nint, int> CommDestroy;
    public readonly delegate* unmanaged<int, nint> ErrorString;

    NcclLibrary(string file, nint lib)
    {
        File = file;
        nint S(string name) => NativeLibraries.Symbol(lib, file, name);
        GetVersion = (delegate* unmanaged<int*, int>)S("ncclGetVersion");
        GetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)S("ncclGetUniqueId");
        CommInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)S("ncclCommInitRank");
        AllReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)S("ncclAllReduce");
        CommDestroy = (delegate* unmanaged<nint, int>)S("ncclCommDestroy");
        ErrorString = (delegate* unmanaged<int, nint>)S("ncclGetErrorString");
    }

    public static string FileFromEnvironment() => Environment.GetEnvironmentVariable("MDM_NCCL_LIBRARY") is { Length: > 0 } f ? f : DefaultFile;

    public static NcclLibrary Load(string file) =>
        new(file, NativeLibraries.Load(file, "NCCL is needed for multi-GPU training: put the directory holding libnccl.so.2 (pip's nvidia-nccl-cu12, PyTorch's torch/lib, or Debian's libnccl2) on LD_LIBRARY_PATH or set MDM_NCCL_LIBRARY"));

    /// <summary>The version code (major·10000 + minor·100 + patch for 2.9 and later).</summary>
    public int Version(int rank)
    {
        int version = 0;
        Check(GetVersion(&version), "ncclGetVersion", rank);
        return version;
    }

    public static string FormatVersion(int code) => $"{code / 10000}.{code / 100 % 100}.{code % 100}";

    /// <summary>Throws naming the call, this rank and NCCL's own message when <paramref name="code"/> is not success.</summary>
    public void Check(int code, string call, int rank)
    {
        if (code == Success) return;
        throw new CollectiveException($"NCCL rank {rank}: {call} failed ({code}: {Marshal.PtrToStringUTF8(ErrorString(code)) ?? "unknown error"})");
    }
}
