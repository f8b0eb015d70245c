using ILGPU.Runtime.Cuda;
using Mdm.Kernels.Gpu;

namespace Mdm.Kernels.Collectives;

/// <summary>All-reduce of CUDA tensors with NCCL, in place on the device buffers and on the backend's ILGPU stream
/// (so it is ordered with the kernels around it). Host buffers, broadcast and barrier go through the bootstrap
/// collective (MPI, or a single process), which also carries NCCL's unique id from rank 0 to the others.</summary>
public sealed unsafe class NcclCollective : Collective
{
    readonly Collective bootstrap;
    readonly IlgpuBackend backend;
    readonly NcclLibrary nccl;
    readonly nint stream;
    nint communicator;

    public override int Rank => bootstrap.Rank;
    public override int WorldSize => bootstrap.WorldSize;
    public override int LocalRank => bootstrap.LocalRank;
    public override string Name { get; }

    NcclCollective(Collective bootstrap, IlgpuBackend backend, NcclLibrary nccl, int version)
    {
        this.bootstrap = bootstrap; this.backend = backend; this.nccl = nccl;
        stream = ((CudaStream)backend.Accelerator.DefaultStream).StreamPtr;
        Name = $"NCCL {NcclLibrary.FormatVersion(version)} over {bootstrap.Name}";
        NcclUniqueId id = default;
        if (Rank == 0) nccl.Check(nccl.GetUniqueId(&id), "ncclGetUniqueId", Rank);
        bootstrap.Broadcast(new Span<byte>(id.Data, NcclUniqueId.Bytes), 0);
        backend.Accelerator.Bind();
        nint comm = 0;
        nccl.Check(nccl.CommInitRank(&comm, WorldSize, id, Rank), "ncclCommInitRank", Rank);
        communicator = comm;
    }

    /// <summary>Opens a communicator of all the bootstrap's ranks on <paramref name="backend"/>'s GPU. The bootstrap
    /// stays owned by the caller. A missing libnccl.so.2, a backend other than CUDA or an NCCL older than 2.10 is
    /// refused with one line saying so.</summary>
    public static NcclCollective Open(Collective bootstrap, Backend backend, string? libraryFile = null)
    {
        var nccl = NcclLibrary.Load(libraryFile ?? NcclLibrary.FileFromEnvironment());
        if (backend is not IlgpuBackend { Kind: BackendKind.Cuda } cuda)
            throw new CollectiveException($"NCCL needs the CUDA backend; this rank runs on {backend.Info.KindName} (use MPI there)");
        int version = nccl.Version(bootstrap.Rank);
        if (version < NcclLibrary.MinimumVersion)
            throw new CollectiveException($"{nccl.File} is NCCL {NcclLibrary.FormatVersion(version)}; need 2.10 or later (ncclAvg)");
        return new NcclCollective(bootstrap, cuda, nccl, version);
    }

    public override void AllReduceSum(Span<float> buffer) => bootstrap.AllReduceSum(buffer);
    public override PendingCollective StartAllReduceSum(Memory<float> buffer) => bootstrap.StartAllReduceSum(buffer);
    public override void Broadcast(Span<byte> buffer, int root) => bootstrap.Broadcast(buffer, root);
    public override void Barrier() => bootstrap.Barrier();
    public override void Abort(int exitCode) => bootstrap.Abort(exitCode);

    public override void AllReduceSum(Tensor tensor) => DeviceAllReduce(tensor, NcclLibrary.OpSum);
    public override void AllReduceAverage(Tensor tensor) => DeviceAllReduce(tensor, NcclLibrary.OpAvg);

    void DeviceAllReduce(Tensor tensor, int op)
    {
        ObjectDisposedException.ThrowIf(communicator == 0, this);
        if (tensor.Backend != backend) throw new ArgumentException($"NCCL all-reduce: tensor {tensor.ShapeString} is on {tensor.Backend.Info.KindName}, not this communicator's GPU");
        if (tensor.DType != DType.F32) throw new ArgumentException($"NCCL all-reduce: tensor {tensor.ShapeString} is {tensor.DType.Name()}, expected F32");
        nint address = (nint)IlgpuBackend.DeviceAddress(tensor);
        nccl.Check(nccl.AllReduce(address, address, (nuint)tensor.Numel, NcclLibrary.Float32, op, communicator, stream), "ncclAllReduce", Rank);
    }

    public override void Dispose()
    {
        if (communicator == 0) return;
        backend.Synchronize();
        nccl.CommDestroy(communicator);
        communicator = 0;
    }
}
