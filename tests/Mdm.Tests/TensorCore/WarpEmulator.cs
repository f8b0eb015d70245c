using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// The ILGPU CPU accelerator the tensor-core kernels run on through <c>EmulatedWarpMma</c>: 32-lane warps and up to
/// 8 warps per group (the GEMM's 256-thread layout), one multiprocessor. One per test run: contexts are expensive.
/// </summary>
public static class WarpEmulator
{
    static readonly Lazy<(Context Context, Accelerator Accelerator)> instance = new(() =>
    {
        var device = new CPUDevice(32, 8, 1);
        var context = Context.Create(b => b.CPU(device).EnableAlgorithms().Optimize(OptimizationLevel.O1));
        return (context, device.CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel));
    });

    public static Accelerator Accelerator => instance.Value.Accelerator;

    /// <summary>The host address of a CPU-accelerator buffer: what the kernels' cp.async takes as a device address.</summary>
    public static long Address<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer) where T : unmanaged =>
        ((ArrayView<T>)buffer.View).LoadEffectiveAddressAsPtr().ToInt64();
}
