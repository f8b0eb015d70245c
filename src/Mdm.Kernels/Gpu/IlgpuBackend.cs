using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.Tuning;

namespace Mdm.Kernels.Gpu;

/// <summary>Raised at start-up when any kernel fails to compile or load: a backend never runs half-loaded.</summary>
public sealed class KernelCompileException(string kernel, string backend, Exception inner)
    : InvalidOperationException($"{backend}: kernel '{kernel}' failed to compile/load: {inner.GetType().Name}: {inner.Message}", inner);

sealed class IlgpuStorage : Storage
{
    readonly CachingAllocator pool;
    public MemoryBuffer1D<byte, Stride1D.Dense> Buffer;
    public IlgpuStorage(CachingAllocator pool, long bytes) : base(bytes) { this.pool = pool; Buffer = pool.Rent(bytes); }
    protected override void Release() => pool.Return(Buffer);
}

/// <summary>
/// The ILGPU kernels, on CUDA or on ILGPU's CPU accelerator. Every kernel is compiled and loaded in the constructor;
/// any failure there is fatal (one failed ILGPU compile poisons its context for later compiles).
/// </summary>
public sealed partial class IlgpuBackend : Backend
{
    readonly Context context;
    readonly Accelerator accelerator;
    readonly CachingAllocator pool;
    readonly DeviceInfo info;
    readonly int groupSize, maxGroups;

    IlgpuBackend(Context context, Accelerator accelerator, BackendKind kind, string details)
    {
        this.context = context;
        this.accelerator = accelerator;
        Kind = kind;
        pool = new CachingAllocator(accelerator);
        long memory = kind == BackendKind.Cuda ? accelerator.MemorySize : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;  // the CPU accelerator reports a nominal 8 EiB
        info = new DeviceInfo(kind, kind == BackendKind.Cuda ? accelerator.Name : "ILGPU CPU accelerator", memory, accelerator.NumMultiprocessors, details);
        if (kind == BackendKind.Cuda) { groupSize = 256; maxGroups = accelerator.NumMultiprocessors * 16; }
        else { groupSize = 32; maxGroups = 2; }   // every simulated thread is an OS thread: keep them few
        try { LoadKernels(); }
        catch { pool.Dispose(); accelerator.Dispose(); context.Dispose(); throw; }
    }

    /// <summary>CUDA device <paramref name="device"/> modulo the device count (a data-parallel rank passes its local
    /// rank). Throws when none is usable (see <see cref="Backends.CudaStatus"/>).</summary>
    public static IlgpuBackend CreateCuda(int device = 0)
    {
        Backends.RegisterCudaResolver();
        var context = Context.Create(b => b.Cuda().EnableAlgorithms().Profiling().Optimize(OptimizationLevel.O1));
        try
        {
            var devices = context.GetCudaDevices();
            if (devices.Count == 0) throw new InvalidOperationException("no CUDA device found (libcuda.so.1 missing or no NVIDIA GPU visible)");
            var acc = (CudaAccelerator)devices[device % devices.Count].CreateAccelerator(context);
            return new IlgpuBackend(context, acc, BackendKind.Cuda, $"{acc.Architecture}, PTX {acc.InstructionSet}, driver {acc.DriverVersion}")
            {
                GpuArchitecture = acc.Architecture is { } arch ? $"sm_{arch.Major}{arch.Minor}" : null,
            };
        }
        catch (KernelCompileException) { throw; }
        catch { context.Dispose(); throw; }
    }

    /// <summary>ILGPU's CPU accelerator with 32-lane warps (so warp code sees real warp widths), 4 warps per group.</summary>
    public static IlgpuBackend CreateCpuAccelerator()
    {
        var device = new CPUDevice(32, 4, 1);
        var context = Context.Create(b => b.CPU(device).EnableAlgorithms().Profiling().Optimize(OptimizationLevel.O1));
        var acc = device.CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel);
        return new IlgpuBackend(context, acc, BackendKind.IlgpuCpu, "ILGPU CPU accelerator, 32 lanes x 4 warps, checks GPU kernels");
    }

    public override BackendKind Kind { get; }

    /// <summary>The CUDA compute capability as the tuning table keys it ("sm_90"); null on the CPU accelerator.</summary>
    public string? GpuArchitecture { get; private init; }

    /// <summary>Measured kernel variants per GPU and shape class (the committed table unless a benchmark swaps it).</summary>
    public TuningTable Tuning { get; set; } = TuningTable.Committed;
    public override DeviceInfo Info => info;
    public override MemoryStats Memory => pool.Stats;
    public override void ResetPeakMemory() => pool.ResetPeak();
    public Accelerator Accelerator => accelerator;
    public override void Synchronize()
    {
        RefuseWhileCapturing("a synchronisation");
        accelerator.Synchronize();
    }

    /// <summary>Return cached blocks to the device (tests use it to measure live bytes).</summary>
    public void EmptyCache() => pool.EmptyCache();

    public override void Dispose()
    {
        accelerator.Synchronize();
        pool.Dispose();
        accelerator.Dispose();
        context.Dispose();
    }

    // ---- memory -----------------------------------------------------------------------------------------------
    protected internal override Storage AllocateStorage(long bytes) => new IlgpuStorage(pool, bytes);

    static ArrayView<byte> Raw(Tensor t) =>
        ((IlgpuStorage)t.Storage).Buffer.View.BaseView.SubView(t.Offset * t.DType.Size(), t.Bytes);

    internal static ArrayView<float> F32(Tensor t) => ((IlgpuStorage)t.Storage).Buffer.View.BaseView.Cast<float>().SubView(t.Offset, t.Numel);
    internal static ArrayView<ushort> U16(Tensor t) => ((IlgpuStorage)t.Storage).Buffer.View.BaseView.Cast<ushort>().SubView(t.Offset, t.Numel);

    protected internal override void Upload(Tensor dst, ReadOnlySpan<byte> src)
    {
        if (src.Length == 0 || RecordUpload(dst, src)) return;
        ArrayView1D<byte, Stride1D.Dense> view = Raw(dst);
        view.CopyFromCPU(accelerator.DefaultStream, src);
    }

    protected internal override void Download(Tensor src, Span<byte> dst)
    {
        if (dst.Length == 0) return;
        RefuseWhileCapturing($"a read of {src} back to the host");
        ArrayView1D<byte, Stride1D.Dense> view = Raw(src);
        view.CopyToCPU(accelerator.DefaultStream, dst);
        accelerator.Synchronize();
    }

    /// <summary>Threads per group of kernels in which a group tree-reduces one output element after another (the conv
    /// weight and bias gradients): the usual group on CUDA; 4 on the CPU accelerator, where every group barrier is a
    /// rendezvous of that many OS threads and these kernels pass several barriers per element.</summary>
    int ReductionGroupSize => Kind == BackendKind.Cuda ? groupSize : 4;

    /// <summary>Grid-stride launch shape for n independent items.</summary>
    KernelConfig Launch(long n)
    {
        long groups = Math.Clamp((n + groupSize - 1) / groupSize, 1, maxGroups);
        return new KernelConfig((int)groups, groupSize);
    }

    T Load<T>(string name, Func<T> load) where T : Delegate
    {
        try { return load(); }
        catch (Exception e) { throw new KernelCompileException(name, Info.KindName, e); }
    }
}
