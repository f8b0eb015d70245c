using System.Runtime.InteropServices;

namespace Mdm.Kernels.Collectives;

/// <summary>Communication between the processes of a data-parallel run: all-reduce of f32 buffers and tensors,
/// broadcast, barrier. Every rank must make the same calls in the same order with the same sizes.</summary>
public abstract class Collective : IDisposable
{
    public abstract int Rank { get; }
    public abstract int WorldSize { get; }
    public abstract int LocalRank { get; }
    /// <summary>What carries the data ("single process", "MPI (Open MPI 4.1.4)", "NCCL 2.21.5").</summary>
    public abstract string Name { get; }

    /// <summary>Replaces <paramref name="buffer"/> on every rank with the element-wise sum over the ranks.</summary>
    public abstract void AllReduceSum(Span<float> buffer);

    /// <summary>Starts replacing <paramref name="buffer"/> on every rank with the element-wise sum over the ranks and
    /// returns without waiting; the buffer stays pinned and must not be touched until the operation completes. Every
    /// rank must start its operations in the same order. The default runs the blocking <see cref="AllReduceSum(Span{float})"/>.</summary>
    public virtual PendingCollective StartAllReduceSum(Memory<float> buffer)
    {
        AllReduceSum(buffer.Span);
        return PendingCollective.Done;
    }

    /// <summary>Whether another thread may <see cref="PendingCollective.Test"/> started operations, one thread at a
    /// time (MPI_THREAD_SERIALIZED): a background poller then moves them while this thread computes.</summary>
    public virtual bool CanProgressFromAnotherThread => false;

    /// <summary>Copies <paramref name="buffer"/> of rank <paramref name="root"/> into every rank's buffer.</summary>
    public abstract void Broadcast(Span<byte> buffer, int root);

    /// <summary>Returns once every rank has entered.</summary>
    public abstract void Barrier();

    /// <summary>Ends this process and every other rank with <paramref name="exitCode"/> (a rank that fails alone must
    /// not leave the others waiting in a collective, nor wait in MPI_Finalize itself). Never returns.</summary>
    public virtual void Abort(int exitCode) => Environment.Exit(exitCode);

    /// <summary>The element-wise mean over the ranks (the sum, then one scale by 1 / world size).</summary>
    public void AllReduceAverage(Span<float> buffer)
    {
        AllReduceSum(buffer);
        if (WorldSize > 1) System.Numerics.Tensors.TensorPrimitives.Multiply(buffer, 1f / WorldSize, buffer);
    }

    public void Broadcast(Span<float> buffer, int root) => Broadcast(MemoryMarshal.AsBytes(buffer), root);

    /// <summary>All-reduce (sum) of an F32 tensor on any backend; the default goes through host memory.</summary>
    public virtual void AllReduceSum(Tensor tensor)
    {
        if (WorldSize == 1) return;
        var host = HostCopy(tensor);
        AllReduceSum(host);
        tensor.CopyFrom(host);
    }

    /// <summary>All-reduce (mean) of an F32 tensor on any backend; the default goes through host memory.</summary>
    public virtual void AllReduceAverage(Tensor tensor)
    {
        if (WorldSize == 1) return;
        var host = HostCopy(tensor);
        AllReduceAverage(host);
        tensor.CopyFrom(host);
    }

    protected static float[] HostCopy(Tensor tensor)
    {
        if (tensor.DType != DType.F32) throw new ArgumentException($"all-reduce: tensor {tensor.ShapeString} is {tensor.DType.Name()}, expected F32");
        return tensor.ToArray();
    }

    protected void CheckRoot(int root)
    {
        if ((uint)root >= (uint)WorldSize) throw new ArgumentOutOfRangeException(nameof(root), root, $"broadcast root must be a rank in 0..{WorldSize - 1}");
    }

    /// <summary>The collective this process was launched for: MPI when a launcher (mpirun, PMI, Slurm) set the rank
    /// variables, else a single process.</summary>
    public static Collective FromEnvironment()
    {
        var launch = LaunchEnvironment.FromProcess();
        return launch.IsLaunched ? MpiCollective.Open(launch) : new SingleProcessCollective();
    }

    public abstract void Dispose();
}
