using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>Binary operators, as struct functors so each op compiles to its own specialised kernel.</summary>
public interface IBinaryFunctor { float Apply(float a, float b); }
public struct AddFunctor : IBinaryFunctor { public readonly float Apply(float a, float b) => a + b; }
public struct SubFunctor : IBinaryFunctor { public readonly float Apply(float a, float b) => a - b; }
public struct MulFunctor : IBinaryFunctor { public readonly float Apply(float a, float b) => a * b; }
/// <summary>SiLU gradient: a = x, b = dy; dx = dy·s·(1 + x·(1 − s)) with s = sigmoid(x).</summary>
public struct SiluGradFunctor : IBinaryFunctor
{
    public readonly float Apply(float x, float dy)
    {
        float s = 1f / (1f + MathF.Exp(-x));
        return dy * s * (1f + x * (1f - s));
    }
}

/// <summary>
/// Elementwise kernels. All are explicitly grouped with a grid-stride loop, so the launcher picks a grid that fills
/// the GPU (or, on the ILGPU CPU accelerator, just a few threads) independently of the element count.
/// </summary>
public static class ElementwiseKernels
{
    public static void Fill(ArrayView<float> y, float value)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride) y[i] = value;
    }

    public static void Copy(ArrayView<float> x, ArrayView<float> y)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride) y[i] = x[i];
    }

    public static void Scale(ArrayView<float> x, ArrayView<float> y, float alpha)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride) y[i] = alpha * x[i];
    }

    public static void SiluForward(ArrayView<float> x, ArrayView<float> y)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
        {
            float v = x[i];
            y[i] = v / (1f + MathF.Exp(-v));
        }
    }

    /// <summary>Same-shape binary op (no broadcasting): the common, fully coalesced case.</summary>
    public static void BinarySame<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) where TOp : struct, IBinaryFunctor
    {
        var op = default(TOp);
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride) y[i] = op.Apply(a[i], b[i]);
    }

    /// <summary>Binary op with NumPy broadcasting: input offsets come from the plan's strides.</summary>
    public static void BinaryBroadcast<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, BroadcastPlan plan)
        where TOp : struct, IBinaryFunctor
    {
        var op = default(TOp);
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
        {
            plan.Offsets(i, out int oa, out int ob);
            y[i] = op.Apply(a[oa], b[ob]);
        }
    }

    /// <summary>y[i] = x[offset_a(i)]: materialises a broadcast (the backward of a sum).</summary>
    public static void BroadcastTo(ArrayView<float> x, ArrayView<float> y, BroadcastPlan plan)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
        {
            plan.Offsets(i, out int ox, out _);
            y[i] = x[ox];
        }
    }

    public static void ToBF16(ArrayView<float> x, ArrayView<ushort> y)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
            y[i] = BFloat16.FromBits((uint)Interop.FloatAsInt(x[i]));
    }

    public static void ToF32(ArrayView<ushort> x, ArrayView<float> y)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
            y[i] = Interop.IntAsFloat((uint)x[i] << 16);
    }
}
