using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

// What a researcher's own kernels need (see docs/custom-ops.md): device views of tensors and the launch shape the
// built-in kernels use; kernel labs also get a per-backend cache for kernels outside the catalogue.
public sealed partial class IlgpuBackend
{
    readonly ConcurrentDictionary<string, Delegate> customKernels = new();

    /// <summary>The device view of an F32 tensor's elements.</summary>
    public static ArrayView<float> View(Tensor t)
    {
        if (t.Backend is not IlgpuBackend) throw new ArgumentException($"View: tensor {t.ShapeString} is on {t.Backend.Info.KindName}, not an ILGPU backend");
        if (t.DType != DType.F32) throw new ArgumentException($"View: tensor {t.ShapeString} is {t.DType.Name()}, expected F32");
        return F32(t);
    }

    /// <summary>The raw device address of a tensor's first element (any dtype), for kernels that take addresses
    /// (cp.async in the tensor-core kernels). Only meaningful on CUDA.</summary>
    public static long DeviceAddress(Tensor t)
    {
        if (t.Backend is not IlgpuBackend) throw new ArgumentException($"DeviceAddress: tensor {t.ShapeString} is on {t.Backend.Info.KindName}, not an ILGPU backend");
        return Raw(t).LoadEffectiveAddressAsPtr().ToInt64();
    }

    /// <summary>Grid-stride launch shape for <paramref name="items"/> independent work items.</summary>
    public KernelConfig LaunchConfig(long items) => Launch(items);

    /// <summary>Threads per group this backend launches with (256 on CUDA, 32 on the CPU accelerator).</summary>
    public int GroupSize => groupSize;

    /// <summary>Loads a kernel lab's kernel once per backend and returns the cached launcher afterwards. Ops do not use
    /// this: they list their kernels in a [KernelCatalogPart] class (compiled at start-up, PTX-tested, SASS-audited)
    /// and launch them with <c>Run</c>.</summary>
    public TDelegate GetOrLoadKernel<TDelegate>(string name, Func<Accelerator, TDelegate> load) where TDelegate : Delegate =>
        (TDelegate)customKernels.GetOrAdd(name, n => Load(n, () => load(accelerator)));
}
