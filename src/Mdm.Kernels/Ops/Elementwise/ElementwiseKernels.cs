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

/// <summary>Unary maps, as struct functors (one specialised kernel each).</summary>
public interface IUnaryFunctor { float Apply(float x); }
public readonly struct ScaleFunctor(float alpha) : IUnaryFunctor { readonly float alpha = alpha; public float Apply(float x) => alpha * x; }
public struct SiluFunctor : IUnaryFunctor { public readonly float Apply(float x) => x / (1f + MathF.Exp(-x)); }
/// <summary>Round to the nearest bf16 (ties to even, NaN kept), widened back: autocast's cast in one pass.</summary>
public struct RoundBF16Functor : IUnaryFunctor
{
    public readonly float Apply(float x) => Interop.IntAsFloat((uint)BFloat16.FromBits((uint)Interop.FloatAsInt(x)) << 16);
}

/// <summary>
/// Elementwise kernels. All are explicitly grouped with a grid-stride loop, so the launcher picks a grid that fills
/// the GPU (or, on the ILGPU CPU accelerator, just a few threads) independently of the element count.
/// </summary>
public static class ElementwiseKernels
{
    [Kernel("Fill")]
    public static void Fill(ArrayView<float> y, float value)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride) y[i] = value;
    }

    // The streaming kernels below take four grid-stride steps per trip, loads first: four independent loads in flight
    // per thread instead of one (ILGPU does not unroll; on the H200 one load per trip reached ~70 % of PyTorch's copy).

    [Kernel("Copy")]
    public static void Copy(ArrayView<float> x, ArrayView<float> y)
    {
        int stride = Grid.DimX * Group.DimX, n = y.IntLength, i = Grid.GlobalIndex.X;
        for (; i < n - 3 * stride; i += 4 * stride)
        {
            float v0 = x[i], v1 = x[i + stride], v2 = x[i + 2 * stride], v3 = x[i + 3 * stride];
            y[i] = v0; y[i + stride] = v1; y[i + 2 * stride] = v2; y[i + 3 * stride] = v3;
        }
        for (; i < n; i += stride) y[i] = x[i];
    }

    [Kernel("Scale")]
    public static void Scale(ArrayView<float> x, ArrayView<float> y, float alpha) => Map(x, y, new ScaleFunctor(alpha));

    [Kernel("SiluForward")]
    public static void SiluForward(ArrayView<float> x, ArrayView<float> y) => Map(x, y, default(SiluFunctor));

    [Kernel("RoundToBF16")]
    public static void RoundToBF16(ArrayView<float> x, ArrayView<float> y) => Map(x, y, default(RoundBF16Functor));

    /// <summary>y = f(x), four grid-stride steps per trip.</summary>
    static void Map<TF>(ArrayView<float> x, ArrayView<float> y, TF f) where TF : struct, IUnaryFunctor
    {
        int stride = Grid.DimX * Group.DimX, n = y.IntLength, i = Grid.GlobalIndex.X;
        for (; i < n - 3 * stride; i += 4 * stride)
        {
            float v0 = x[i], v1 = x[i + stride], v2 = x[i + 2 * stride], v3 = x[i + 3 * stride];
            y[i] = f.Apply(v0); y[i + stride] = f.Apply(v1); y[i + 2 * stride] = f.Apply(v2); y[i + 3 * stride] = f.Apply(v3);
        }
        for (; i < n; i += stride) y[i] = f.Apply(x[i]);
    }

    /// <summary>Same-shape binary op (no broadcasting): the common, fully coalesced case; four steps per trip.</summary>
    [Kernel("SiluBackward", typeof(SiluGradFunctor))]
    [Kernel("AddSame", typeof(AddFunctor))]
    [Kernel("SubSame", typeof(SubFunctor))]
    [Kernel("MulSame", typeof(MulFunctor))]
    public static void BinarySame<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) where TOp : struct, IBinaryFunctor
    {
        var op = default(TOp);
        int stride = Grid.DimX * Group.DimX, n = y.IntLength, i = Grid.GlobalIndex.X;
        for (; i < n - 3 * stride; i += 4 * stride)
        {
            float a0 = a[i], a1 = a[i + stride], a2 = a[i + 2 * stride], a3 = a[i + 3 * stride];
            float b0 = b[i], b1 = b[i + stride], b2 = b[i + 2 * stride], b3 = b[i + 3 * stride];
            y[i] = op.Apply(a0, b0); y[i + stride] = op.Apply(a1, b1);
            y[i + 2 * stride] = op.Apply(a2, b2); y[i + 3 * stride] = op.Apply(a3, b3);
        }
        for (; i < n; i += stride) y[i] = op.Apply(a[i], b[i]);
    }

    /// <summary>Binary op with NumPy broadcasting: input offsets come from the plan's strides.</summary>
    [Kernel("AddBroadcast", typeof(AddFunctor))]
    [Kernel("SubBroadcast", typeof(SubFunctor))]
    [Kernel("MulBroadcast", typeof(MulFunctor))]
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
    [Kernel("BroadcastTo")]
    public static void BroadcastTo(ArrayView<float> x, ArrayView<float> y, BroadcastPlan plan)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
        {
            plan.Offsets(i, out int ox, out _);
            y[i] = x[ox];
        }
    }

    /// <summary>y = a + b with a bf16 and b, y bf16 or f32 (TB, TY): widened, summed in f32, narrowed.</summary>
    [Kernel("AddBF16", typeof(ushort), typeof(BF16Widen), typeof(ushort), typeof(BF16Narrow))]
    [Kernel("AddBF16F32", typeof(float), typeof(F32Widen), typeof(float), typeof(F32Narrow))]
    public static void AddWidened<TB, TBW, TY, TYN>(ArrayView<ushort> a, ArrayView<TB> b, ArrayView<TY> y)
        where TB : unmanaged where TBW : struct, IWiden<TB> where TY : unmanaged where TYN : struct, INarrow<TY>
    {
        var (wb, n) = (default(TBW), default(TYN));
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
            y[i] = n.Narrow(Interop.IntAsFloat((uint)a[i] << 16) + wb.Widen(b[i]));
    }

    [Kernel("ToBF16")]
    public static void ToBF16(ArrayView<float> x, ArrayView<ushort> y)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
            y[i] = BFloat16.FromBits((uint)Interop.FloatAsInt(x[i]));
    }

    [Kernel("ToF32")]
    public static void ToF32(ArrayView<ushort> x, ArrayView<float> y)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
            y[i] = Interop.IntAsFloat((uint)x[i] << 16);
    }
}
