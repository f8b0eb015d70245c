namespace Mdm.Kernels.Collectives;

/// <summary>Collectives over MPI_COMM_WORLD through Open MPI. Errors return to the caller (MPI_ERRORS_RETURN) and
/// are thrown as <see cref="CollectiveException"/>; a rank that dies is detected by mpirun, which stops the others
/// and names the rank.</summary>
public sealed unsafe class MpiCollective : Collective
{
    /// <summary>MPI counts are ints: larger buffers go in chunks of this many elements.</summary>
    const int MaxChunk = 1 << 30;

    readonly MpiLibrary mpi;
    readonly bool ownsInit;
    bool disposed;

    public override int Rank { get; }
    public override int WorldSize { get; }
    public override int LocalRank { get; }
    public override string Name { get; }

    MpiCollective(MpiLibrary mpi, bool ownsInit, int rank, int size, int localRank)
    {
        this.mpi = mpi; this.ownsInit = ownsInit;
        Rank = rank; WorldSize = size; LocalRank = localRank;
        Name = $"MPI ({mpi.Version()})";
    }

    /// <summary>Initialises MPI for a process started by a launcher. A process started on its own is refused: it
    /// would silently become a world of one.</summary>
    public static MpiCollective Open(LaunchEnvironment launch, string? libraryFile = null)
    {
        if (!launch.IsLaunched)
            throw new CollectiveException("MPI: this process was not started by mpirun (OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/SIZE and SLURM_PROCID/NTASKS are unset); run it as: mpirun -np N <command>");
        var mpi = MpiLibrary.Load(libraryFile ?? MpiLibrary.FileFromEnvironment());
        int initialized = 0;
        mpi.Check(mpi.Initialized(&initialized), "MPI_Initialized", launch.Rank);
        if (initialized == 0) mpi.Check(mpi.Init(0, 0), "MPI_Init", launch.Rank);
        mpi.Check(mpi.CommSetErrhandler(mpi.CommWorld, mpi.ErrorsReturn), "MPI_Comm_set_errhandler", launch.Rank);
        int rank = 0, size = 0;
        mpi.Check(mpi.CommRank(mpi.CommWorld, &rank), "MPI_Comm_rank", launch.Rank);
        mpi.Check(mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size", launch.Rank);
        if (rank != launch.Rank || size != launch.WorldSize)
            throw new CollectiveException($"MPI says rank {rank} of {size}, the {launch.Launcher} environment says {launch.Rank} of {launch.WorldSize}");
        return new MpiCollective(mpi, initialized == 0, rank, size, launch.LocalRank);
    }

    public override void AllReduceSum(Span<float> buffer)
    {
        CheckOpen();
        fixed (float* p = buffer)
            for (int start = 0; start < buffer.Length; start += MaxChunk)
            {
                int count = Math.Min(MaxChunk, buffer.Length - start);
                mpi.Check(mpi.Allreduce(MpiLibrary.InPlace, (nint)(p + start), count, mpi.Float, mpi.OpSum, mpi.CommWorld), "MPI_Allreduce", Rank);
            }
    }

    public override void Broadcast(Span<byte> buffer, int root)
    {
        CheckOpen();
        CheckRoot(root);
        fixed (byte* p = buffer)
            for (int start = 0; start < buffer.Length; start += MaxChunk)
            {
                int count = Math.Min(MaxChunk, buffer.Length - start);
                mpi.Check(mpi.Bcast((nint)(p + start), count, mpi.Byte, root, mpi.CommWorld), "MPI_Bcast", Rank);
            }
    }

    public override void Barrier()
    {
        CheckOpen();
        mpi.Check(mpi.BarrierCall(mpi.CommWorld), "MPI_Barrier", Rank);
    }

    /// <summary>MPI_Abort: mpirun ends every rank and exits with <paramref name="exitCode"/>. Never returns.</summary>
    public override void Abort(int exitCode)
    {
        mpi.AbortCall(mpi.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    void CheckOpen() => ObjectDisposedException.ThrowIf(disposed, this);

    /// <summary>Finalises MPI if this object initialised it (once per process: MPI cannot be initialised again).</summary>
    public override void Dispose()
    {
        if (disposed) return;
        disposed = true;
        int finalized = 0;
        if (ownsInit && mpi.Finalized(&finalized) == MpiLibrary.Success && finalized == 0) mpi.Finalize();
    }
}
