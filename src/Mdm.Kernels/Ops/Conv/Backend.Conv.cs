namespace Mdm.Kernels;

/// <summary>
/// The geometry of one 2D convolution (PyTorch conv2d, i.e. cross-correlation, no dilation, groups = 1):
/// x [N, Cin, H, W], weight [Cout, Cin, KH, KW], y [N, Cout, Ho, Wo] with Ho = floor((H + 2·PadH − KH) / StrideH) + 1
/// (likewise Wo). Conv1d runs through the same geometry with H = KH = 1, StrideH = 1, PadH = 0.
/// A plain struct of ints so the GPU kernels take it as one argument; <see cref="Ops"/> builds and validates it.
/// </summary>
public struct Conv2dGeometry
{
    public int N, Cin, H, W;
    public int Cout, KH, KW;
    public int StrideH, StrideW, PadH, PadW;
    public int Ho, Wo;

    /// <summary>Output size along one axis, PyTorch's floor((size + 2·pad − k) / stride) + 1; ≤ 0 when the window does not fit.</summary>
    public static int OutputSize(int size, int kernel, int stride, int pad)
    {
        long span = (long)size + 2L * pad - kernel;
        return span < 0 ? 0 : (int)(span / stride + 1);
    }

    /// <summary>Elements of one im2col column matrix row: Cin·KH·KW (the GEMM inner dimension).</summary>
    public readonly int PatchSize => Cin * KH * KW;

    /// <summary>1×1 kernel, stride 1, no padding: the convolution is a plain matrix product per sample.</summary>
    public readonly bool IsPointwise => KH == 1 && KW == 1 && StrideH == 1 && StrideW == 1 && PadH == 0 && PadW == 0;

    public readonly int[] InputShape => [N, Cin, H, W];
    public readonly int[] WeightShape => [Cout, Cin, KH, KW];
    public readonly int[] OutputShape => [N, Cout, Ho, Wo];

    public override readonly string ToString() =>
        $"x {Shape.Format(InputShape)}, weight {Shape.Format(WeightShape)}, stride ({StrideH},{StrideW}), padding ({PadH},{PadW}) -> {Shape.Format(OutputShape)}";
}

public abstract partial class Backend
{
    /// <summary>y = conv2d(x, weight) + bias (bias may be null). Shapes as in <paramref name="g"/>; y is overwritten.</summary>
    protected internal abstract void Conv2dForward(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g);

    /// <summary>
    /// y = conv2d(x, weight) + bias with x and weight in BF16 (f32 accumulation, F32 y). This default widens both to
    /// F32 (exact) and runs <see cref="Conv2dForward"/>; CUDA overrides it with tensor cores.
    /// </summary>
    protected internal virtual void Conv2dForwardBF16(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g)
    {
        using var xf = Ops.ToF32(x);
        using var wf = Ops.ToF32(weight);
        Conv2dForward(xf, wf, bias, y, g);
    }

    /// <summary>
    /// <see cref="Conv2dForwardBF16"/> into a BF16 y (autocast's conv output). This default runs it into an f32 block
    /// that is rounded into y and freed at once, so only the bf16 output outlives the call.
    /// </summary>
    protected internal virtual void Conv2dForwardBF16Out(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g)
    {
        using var wide = Empty(DType.F32, y.Shape);
        Conv2dForwardBF16(x, weight, bias, wide, g);
        ConvertToBF16(wide, y);
    }

    /// <summary>y = conv2d(x, weight) + bias + residual (residual shaped as y, not aliasing it). This default adds the
    /// residual in a second pass over y; the ILGPU backend adds it in the convolution kernel's epilogue.</summary>
    protected internal virtual void Conv2dForwardResidual(Tensor x, Tensor weight, Tensor? bias, Tensor residual, Tensor y, in Conv2dGeometry g)
    {
        Conv2dForward(x, weight, bias, y, g);
        Ops.Add(y, residual, y);
    }

    /// <summary><see cref="Conv2dForwardResidual"/> with x and weight in BF16; default: widen and run the F32 one.</summary>
    protected internal virtual void Conv2dForwardResidualBF16(Tensor x, Tensor weight, Tensor? bias, Tensor residual, Tensor y, in Conv2dGeometry g)
    {
        using var xf = Ops.ToF32(x);
        using var wf = Ops.ToF32(weight);
        Conv2dForwardResidual(xf, wf, bias, residual, y, g);
    }

    /// <summary>Conv2dBackwardInput with dy and weight in BF16 (F32 dx); default: widen and run the F32 kernel.</summary>
    protected internal virtual void Conv2dBackwardInputBF16(Tensor dy, Tensor weight, Tensor dx, in Conv2dGeometry g)
    {
        using var dyf = Ops.ToF32(dy);
        using var wf = Ops.ToF32(weight);
        Conv2dBackwardInput(dyf, wf, dx, g);
    }

    /// <summary>Conv2dBackwardWeight with x and dy in BF16 (F32 dweight); default: widen and run the F32 kernel.</summary>
    protected internal virtual void Conv2dBackwardWeightBF16(Tensor x, Tensor dy, Tensor dweight, in Conv2dGeometry g)
    {
        using var xf = Ops.ToF32(x);
        using var dyf = Ops.ToF32(dy);
        Conv2dBackwardWeight(xf, dyf, dweight, g);
    }

    /// <summary>dx = ∂L/∂x given dy = ∂L/∂y (the transposed convolution of dy with weight); dx is overwritten.</summary>
    protected internal abstract void Conv2dBackwardInput(Tensor dy, Tensor weight, Tensor dx, in Conv2dGeometry g);

    /// <summary>dweight = ∂L/∂weight = Σ over samples and output positions of dy · x-patch; dweight is overwritten.</summary>
    protected internal abstract void Conv2dBackwardWeight(Tensor x, Tensor dy, Tensor dweight, in Conv2dGeometry g);

    /// <summary>dbias[c] = Σ over n, oh, ow of dy[n, c, oh, ow]; dbias is overwritten.</summary>
    protected internal abstract void Conv2dBackwardBias(Tensor dy, Tensor dbias, in Conv2dGeometry g);
}
