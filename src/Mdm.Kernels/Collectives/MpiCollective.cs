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
    public override bool CanProgressFromAnotherThread { get; }

    MpiCollective(MpiLibrary mpi, bool ownsInit, int rank, int size, int localRank, bool serializedThreads)
    {
        this.mpi = mpi; this.ownsInit = ownsInit;
        CanProgressFromAnotherThread = serializedThreads;
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
        int threads = 0;
        if (initialized == 0) mpi.Check(mpi.InitThread(0, 0, MpiLibrary.ThreadSerialized, &threads), "MPI_Init_thread", launch.Rank);
        else mpi.Check(mpi.QueryThread(&threads), "MPI_Query_thread", launch.Rank);
        mpi.Check(mpi.CommSetErrhandler(mpi.CommWorld, mpi.ErrorsReturn), "MPI_Comm_set_errhandler", launch.Rank);
        int rank = 0, size = 0;
        mpi.Check(mpi.CommRank(mpi.CommWorld, &rank), "MPI_Comm_rank", launch.Rank);
        mpi.Check(mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size", launch.Rank);
        if (rank != launch.Rank || size != launch.WorldSize)
            throw new CollectiveException($"MPI says rank {rank} of {size}, the {launch.Launcher} environment says {launch.Rank} of {launch.WorldSize}");
        return new MpiCollective(mpi, initialized == 0, rank, size, launch.LocalRank, threads >= MpiLibrary.ThreadSerialized);
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

    /// <summary>MPI_Iallreduce in place, one request per chunk; the buffer stays pinned until the last completes.</summary>
    public override PendingCollective StartAllReduceSum(Memory<float> buffer)
    {
        CheckOpen();
        var pin = buffer.Pin();
        var requests = new nint[(buffer.Length + MaxChunk - 1) / MaxChunk];
        try
        {
            for (int c = 0; c < requests.Length; c++)
            {
                int start = c * MaxChunk, count = Math.Min(MaxChunk, buffer.Length - start);
                fixed (nint* request = &requests[c])
                    mpi.Check(mpi.Iallreduce(MpiLibrary.InPlace, (nint)((float*)pin.Pointer + start), count, mpi.Float, mpi.OpSum, mpi.CommWorld, request), "MPI_Iallreduce", Rank);
            }
        }
        catch { pin.Dispose(); throw; }
        return new PendingAllReduce(this, requests, pin);
    }

    sealed class PendingAllReduce(MpiCollective owner, nint[] requests, System.Buffers.MemoryHandle pin) : PendingCollective
    {
        int completed;

        public override bool Test()
        {
            while (completed < requests.Length)
            {
                int done = 0;
                fixed (nint* request = &requests[completed])
                    owner.mpi.Check(owner.mpi.TestCall(request, &done, MpiLibrary.StatusIgnore), "MPI_Test", owner.Rank);
                if (done == 0) return false;
                completed++;
            }
            pin.Dispose();
            return true;
        }

        public override void Wait()
        {
            for (; completed < requests.Length; completed++)
                fixed (nint* request = &requests[completed])
                    owner.mpi.Check(owner.mpi.WaitCall(request, MpiLibrary.StatusIgnore), "MPI_Wait", owner.Rank);
            pin.Dispose();
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
