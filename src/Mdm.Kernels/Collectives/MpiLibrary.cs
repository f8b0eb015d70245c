using System.Runtime.InteropServices;

namespace Mdm.Kernels.Collectives;

/// <summary>The few Open MPI entry points the collectives use, bound at run time from libmpi.so.40 (Open MPI 3 and
/// later; MDM_MPI_LIBRARY names another file). Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the
/// addresses of exported globals.</summary>
sealed unsafe class MpiLibrary
{
    public const string DefaultFile = "libmpi.so.40";
    public const int Success = 0;
    /// <summary>MPI_IN_PLACE in Open MPI's mpi.h.</summary>
    public static readonly nint InPlace = 1;
    /// <summary>MPI_THREAD_SERIALIZED in Open MPI's mpi.h: any thread may call MPI, one at a time.</summary>
    public const int ThreadSerialized = 2;
    /// <summary>MPI_STATUS_IGNORE in Open MPI's mpi.h.</summary>
    public static readonly nint StatusIgnore = 0;

    public readonly string File;
    public readonly nint CommWorld, Float, Byte, OpSum, ErrorsReturn;
    public readonly delegate* unmanaged<int*, int> Initialized;
    public readonly delegate* unmanaged<int*, int> Finalized;
    public readonly delegate* unmanaged<nint, nint, int, int*, int> InitThread;
    public readonly delegate* unmanaged<int*, int> QueryThread;
    public readonly delegate* unmanaged<int> Finalize;
    public readonly delegate* unmanaged<nint, int*, int> CommRank;
    public readonly delegate* unmanaged<nint, int*, int> CommSize;
    public readonly delegate* unmanaged<nint, nint, int> CommSetErrhandler;
    public readonly delegate* unmanaged<nint, nint, int, nint, nint, nint, int> Allreduce;
    public readonly delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int> Iallreduce;
    public readonly delegate* unmanaged<nint*, int*, nint, int> TestCall;
    public readonly delegate* unmanaged<nint*, nint, int> WaitCall;
    public readonly delegate* unmanaged<nint, int, nint, int, nint, int> Bcast;
    public readonly delegate* unmanaged<nint, int> BarrierCall;
    public readonly delegate* unmanaged<nint, int, int> AbortCall;
    public readonly delegate* unmanaged<int, byte*, int*, int> ErrorString;
    public readonly delegate* unmanaged<byte*, int*, int> LibraryVersion;

    MpiLibrary(string file, nint lib)
    {
        File = file;
        nint S(string name) => NativeLibraries.Symbol(lib, file, name);
        CommWorld = S("ompi_mpi_comm_world"); Float = S("ompi_mpi_float"); Byte = S("ompi_mpi_byte");
        OpSum = S("ompi_mpi_op_sum"); ErrorsReturn = S("ompi_mpi_errors_return");
        Initialized = (delegate* unmanaged<int*, int>)S("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)S("MPI_Finalized");
        InitThread = (delegate* unmanaged<nint, nint, int, int*, int>)S("MPI_Init_thread");
        QueryThread = (delegate* unmanaged<int*, int>)S("MPI_Query_thread");
        Finalize = (delegate* unmanaged<int>)S("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)S("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)S("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)S("MPI_Comm_set_errhandler");
        Allreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, int>)S("MPI_Allreduce");
        Iallreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int>)S("MPI_Iallreduce");
        TestCall = (delegate* unmanaged<nint*, int*, nint, int>)S("MPI_Test");
        WaitCall = (delegate* unmanaged<nint*, nint, int>)S("MPI_Wait");
        Bcast = (delegate* unmanaged<nint, int, nint, int, nint, int>)S("MPI_Bcast");
        BarrierCall = (delegate* unmanaged<nint, int>)S("MPI_Barrier");
        AbortCall = (delegate* unmanaged<nint, int, int>)S("MPI_Abort");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)S("MPI_Error_string");
        LibraryVersion = (delegate* unmanaged<byte*, int*, int>)S("MPI_Get_library_version");
    }

    public static string FileFromEnvironment() => Environment.GetEnvironmentVariable("MDM_MPI_LIBRARY") is { Length: > 0 } f ? f : DefaultFile;

    public static MpiLibrary Load(string file) =>
        new(file, NativeLibraries.Load(file, "install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) or set MDM_MPI_LIBRARY"));

    /// <summary>The first line of MPI_Get_library_version ("Open MPI v4.1.4, ...").</summary>
    public string Version()
    {
        var text = new byte[1024];
        int length = 0;
        fixed (byte* p = text) LibraryVersion(p, &length);
        string full = System.Text.Encoding.ASCII.GetString(text, 0, Math.Clamp(length, 0, text.Length));
        return full.Split([',', '\n'])[0].Trim();
    }

    /// <summary>Throws naming the call, this rank and MPI's own message when <paramref name="code"/> is not success.</summary>
    public void Check(int code, string call, int rank)
    {
        if (code == Success) return;
        var text = new byte[1024];
        int length = 0;
        fixed (byte* p = text) ErrorString(code, p, &length);
        throw new CollectiveException($"MPI rank {rank}: {call} failed ({code}: {System.Text.Encoding.ASCII.GetString(text, 0, Math.Clamp(length, 0, text.Length)).Trim()})");
    }
}
