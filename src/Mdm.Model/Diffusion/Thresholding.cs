using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;
using Mdm.Kernels.Gpu;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Mdm.Model.Diffusion;

/// <summary>How the sampler bounds x̂0 before each transition (ml-mdm <c>threshold_function</c>).</summary>
public enum ThresholdType
{
    None,
    /// <summary>clip(x̂0·s, −1, 1)/s with s the stream's signal scale (1 with the SNR shift).</summary>
    Clip,
    /// <summary>Imagen dynamic thresholding: s = clamp(quantile_0.995 |x̂0|, 1, 100) per sample, x̂0 ← clamp(x̂0, −s, s)/s;
    /// like Clip, applied to x̂0 times the stream's signal scale and divided back, as ml-mdm does.</summary>
    Dynamic,
    /// <summary>DeepFloyd's variant (ml-mdm DYNAMIC_IF, the web-demo default): quantile 0.95, s at most 1.5.</summary>
    DynamicDeepFloyd,
}

/// <summary>
/// Clamping and thresholding on the device, in fp32 like ml-mdm. No built-in op clamps, so these are two small kernels
/// through the custom-kernel entry points (ILGPU for CUDA and the CPU accelerator, TensorPrimitives on the CPU backend).
/// NaN stays NaN, as with torch.clamp.
/// </summary>
public static class Thresholding
{
    public const double ImagenQuantile = 0.995, ImagenMaxScale = 100, DeepFloydQuantile = 0.95, DeepFloydMaxScale = 1.5;

    /// <summary>A new tensor: <paramref name="x0"/> [B, ...] thresholded per <paramref name="type"/>.</summary>
    public static Tensor Apply(Tensor x0, ThresholdType type, double imageScale = 1)
    {
        ArgumentNullException.ThrowIfNull(x0);
        if (!(imageScale > 0) || double.IsInfinity(imageScale))
            throw new ArgumentException($"Thresholding: image scale must be positive and finite, got {imageScale}");
        switch (type)
        {
            case ThresholdType.None: return Ops.Copy(x0);
            case ThresholdType.Clip when imageScale == 1: return Clamp(x0, -1, 1);
            case ThresholdType.Clip:
            {
                var y = Ops.Scale(x0, (float)imageScale);
                Clamp(y, -1, 1, y);
                return Ops.Scale(y, (float)(1 / imageScale), y);
            }
            case ThresholdType.Dynamic: return Scaled(x0, imageScale, ImagenQuantile, ImagenMaxScale);
            case ThresholdType.DynamicDeepFloyd: return Scaled(x0, imageScale, DeepFloydQuantile, DeepFloydMaxScale);
            default: throw new ArgumentException($"Thresholding: unknown type {type}");
        }
    }

    /// <summary>ml-mdm's clip_sample for the dynamic types: threshold(x̂0·s)/s (s = 1 leaves x̂0 unscaled).</summary>
    static Tensor Scaled(Tensor x0, double imageScale, double quantile, double maxScale)
    {
        if (imageScale == 1) return Dynamic(x0, quantile, maxScale);
        var y = Ops.Scale(x0, (float)imageScale);
        Dynamic(y, quantile, maxScale, y);
        return Ops.Scale(y, (float)(1 / imageScale), y);
    }

    /// <summary>y = min(max(x, lo), hi) elementwise (y may be x).</summary>
    public static Tensor Clamp(Tensor x, float lo, float hi, Tensor? y = null)
    {
        const string op = "Thresholding.Clamp";
        if (!(lo <= hi)) throw new ArgumentException($"{op}: need lo <= hi, got [{lo}, {hi}] for {x.ShapeString}");
        y = Output(op, x, y);
        if (x.Numel == 0) return y;
        if (x.Backend is IlgpuBackend gpu)
        {
            gpu.Run(ClampKernel, gpu.LaunchConfig(x.Numel), IlgpuBackend.View(x), IlgpuBackend.View(y), lo, hi);
        }
        else
        {
            var dst = CpuBackend.Span(y);
            TensorPrimitives.Max(CpuBackend.Span(x), lo, dst);
            TensorPrimitives.Min(dst, hi, dst);
        }
        return y;
    }

    /// <summary>Dynamic thresholding per sample of x [B, ...]: s_b = clamp(quantile_p |x_b|, 1, maxScale), y_b = clamp(x_b, −s_b, s_b)/s_b.</summary>
    public static Tensor Dynamic(Tensor x, double quantile, double maxScale, Tensor? y = null)
    {
        const string op = "Thresholding.Dynamic";
        if (!(maxScale >= 1) || double.IsInfinity(maxScale))
            throw new ArgumentException($"{op}: the largest scale must be finite and at least 1, got {maxScale}");
        if (x.Rank == 0) throw new ArgumentException($"{op}: needs a batch axis, got {x.ShapeString}");
        y = Output(op, x, y);
        if (x.Numel == 0) return y;
        using var q = Ops.QuantileAbs(x, quantile);
        int rows = x.Dim(0), rowLen = (int)(x.Numel / rows);
        if (x.Backend is IlgpuBackend gpu)
        {
            gpu.Run(DynamicKernel, gpu.LaunchConfig(x.Numel), IlgpuBackend.View(x), IlgpuBackend.View(q), IlgpuBackend.View(y), rowLen, (float)maxScale);
        }
        else
        {
            var scales = q.ToArray();
            var src = CpuBackend.Span(x);
            var dst = CpuBackend.Span(y);
            for (int r = 0; r < rows; r++)
            {
                float s = ScaleOf(scales[r], (float)maxScale);
                var row = dst.Slice(r * rowLen, rowLen);
                TensorPrimitives.Max(src.Slice(r * rowLen, rowLen), -s, row);
                TensorPrimitives.Min(row, s, row);
                TensorPrimitives.Divide(row, s, row);
            }
        }
        return y;
    }

    /// <summary>clamp(q, 1, max) that keeps NaN (comparisons with NaN are false).</summary>
    static float ScaleOf(float q, float max) => q < 1f ? 1f : q > max ? max : q;

    static Tensor Output(string op, Tensor x, Tensor? y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ObjectDisposedException.ThrowIf(x.IsDisposed, x);
        if (x.DType != DType.F32) throw new ArgumentException($"{op}: expected F32, got {x.DType.Name()} tensor {x.ShapeString}");
        if (y is null) return x.Backend.Empty(x.Shape);
        if (!ReferenceEquals(x.Backend, y.Backend) || y.DType != DType.F32 || !Shape.Equal(x.Dims, y.Dims))
            throw new ArgumentException($"{op}: output {y} does not match input {x}");
        return y;
    }

    // ---- ILGPU kernels (grid-stride, one element per iteration) --------------------------------------------------
    /// <summary>Catalogued: compiled when an ILGPU backend starts, PTX-compile-tested and SASS-audited.</summary>
    [KernelCatalogPart]
    static class Kernels
    {
        internal static readonly Delegate Clamp = ClampKernel;
        internal static readonly Delegate Dynamic = DynamicKernel;
    }

    static void ClampKernel(ArrayView<float> x, ArrayView<float> y, float lo, float hi)
    {
        int n = y.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            float v = x[i];
            y[i] = v < lo ? lo : v > hi ? hi : v;
        }
    }

    static void DynamicKernel(ArrayView<float> x, ArrayView<float> q, ArrayView<float> y, int rowLen, float maxScale)
    {
        int n = y.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            float s = ScaleOf(q[i / rowLen], maxScale);
            float v = x[i];
            y[i] = (v < -s ? -s : v > s ? s : v) / s;
        }
    }
}
