namespace Mdm.Kernels.Cpu;

// What a researcher's CPU code needs (see docs/custom-ops.md).
public sealed partial class CpuBackend
{
    /// <summary>The host span of an F32 tensor's elements (valid while the tensor lives).</summary>
    public static Span<float> Span(Tensor t)
    {
        if (t.Backend is not CpuBackend) throw new ArgumentException($"Span: tensor {t.ShapeString} is on {t.Backend.Info.KindName}, not the CPU backend");
        if (t.DType != DType.F32) throw new ArgumentException($"Span: tensor {t.ShapeString} is {t.DType.Name()}, expected F32");
        return F32(t);
    }
}
