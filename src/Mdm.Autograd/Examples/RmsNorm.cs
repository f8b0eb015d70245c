using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;
using Mdm.Kernels.Gpu;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Mdm.Autograd.Examples;

/// <summary>
/// The worked example of docs/custom-ops.md: a fused RMSNorm over the last axis, y = x · g / √(mean(x²) + eps),
/// as one <see cref="OpDefinition{TAttributes}"/> like every built-in op — ILGPU kernels for CUDA and the CPU
/// accelerator, TensorPrimitives code for the CPU backend, a float64 reference — registered once, which gives it
/// autograd, gradient checks and forward checks on every backend, benchmark entries, and (through [Kernel] on its
/// kernels) start-up compilation, the PTX test and the SASS audit.
/// Backward, with r = 1/√(mean(x²) + eps) per row and s = Σ_k dy_k·g_k·x_k:
///   dx_j = r·g_j·dy_j − x_j·r³·s / D,    dg_j = Σ_rows dy_j·x_j·r.
/// </summary>
public static class RmsNorm
{
    public sealed record Attr(float Eps);

    /// <summary>The registration (first use registers it).</summary>
    public static OpDefinition<Attr> Op { get; } = OpDefinition.Register(new OpDefinition<Attr>("rms_norm", Forward, Backward)
    {
        Reference = Reference,
        CheckShapes = [[3, 7], [7]],
        BenchShapes = [[16 * 32 * 32, 64], [64]],
        CheckAttributes = new Attr(1e-6f),
    });

    public static Variable Apply(Variable x, Variable g, float eps = 1e-6f) => Op.Apply(new Attr(eps), x, g);

    // ---- forward / backward dispatch ------------------------------------------------------------------------------
    static (Tensor, Tensor[]) Forward(Tensor[] inputs, Attr attributes)
    {
        var (x, g) = (inputs[0], inputs[1]);
        float eps = attributes.Eps;
        int d = x.Dim(-1);
        if (g.Rank != 1 || g.Dim(0) != d)
            throw new ArgumentException($"rms_norm: gain {g.ShapeString} must be [{d}] for input {x.ShapeString}");
        int rows = (int)(x.Numel / Math.Max(d, 1));
        var y = x.Backend.Empty(x.Shape);
        var r = x.Backend.Empty(rows);
        if (x.Backend is IlgpuBackend gpu)
        {
            gpu.Run(ForwardKernel, gpu.LaunchConfig(rows), IlgpuBackend.View(x), IlgpuBackend.View(g), IlgpuBackend.View(y), IlgpuBackend.View(r), d, eps);
        }
        else ForwardCpu(x, g, y, r, rows, d, eps);
        return (y, [r]);
    }

    static Tensor?[] Backward(OpContext<Attr> ctx, Tensor dy)
    {
        var (x, g, r) = (ctx.Input(0), ctx.Input(1), ctx.Saved[0]);
        int d = x.Dim(-1), rows = (int)(x.Numel / Math.Max(d, 1));
        var dx = x.Backend.Empty(x.Shape);
        var dg = x.Backend.Empty(d);
        if (x.Backend is IlgpuBackend gpu)
        {
            gpu.Run(BackwardInputKernel, gpu.LaunchConfig(rows), IlgpuBackend.View(x), IlgpuBackend.View(g), IlgpuBackend.View(r), IlgpuBackend.View(dy), IlgpuBackend.View(dx), d);
            gpu.Run(BackwardGainKernel, gpu.LaunchConfig(d), IlgpuBackend.View(x), IlgpuBackend.View(r), IlgpuBackend.View(dy), IlgpuBackend.View(dg), rows, d);
        }
        else BackwardCpu(x, g, r, dy, dx, dg, rows, d);
        return [ctx.NeedsGrad(0) ? dx : Dispose(dx), ctx.NeedsGrad(1) ? dg : Dispose(dg)];
    }

    static Tensor? Dispose(Tensor t) { t.Dispose(); return null; }

    // ---- ILGPU kernels: one thread per row (forward, dx) or per column (dg), grid-stride --------------------------
    // [Kernel]: in the catalogue, so compiled when an ILGPU backend starts, PTX-compile-tested and SASS-audited.
    [Kernel("RmsNorm.Forward")]
    static void ForwardKernel(ArrayView<float> x, ArrayView<float> g, ArrayView<float> y, ArrayView<float> r, int d, float eps)
    {
        int rows = r.IntLength, stride = Grid.DimX * Group.DimX;
        for (int row = Grid.GlobalIndex.X; row < rows; row += stride)
        {
            int o = row * d;
            float ss = 0f;
            for (int j = 0; j < d; j++) ss += x[o + j] * x[o + j];
            float inv = 1f / MathF.Sqrt(ss / d + eps);
            r[row] = inv;
            for (int j = 0; j < d; j++) y[o + j] = x[o + j] * inv * g[j];
        }
    }

    [Kernel("RmsNorm.BackwardInput")]
    static void BackwardInputKernel(ArrayView<float> x, ArrayView<float> g, ArrayView<float> r, ArrayView<float> dy, ArrayView<float> dx, int d)
    {
        int rows = r.IntLength, stride = Grid.DimX * Group.DimX;
        for (int row = Grid.GlobalIndex.X; row < rows; row += stride)
        {
            int o = row * d;
            float inv = r[row], s = 0f;
            for (int j = 0; j < d; j++) s += dy[o + j] * g[j] * x[o + j];
            float c = inv * inv * inv * s / d;
            for (int j = 0; j < d; j++) dx[o + j] = inv * g[j] * dy[o + j] - x[o + j] * c;
        }
    }

    [Kernel("RmsNorm.BackwardGain")]
    static void BackwardGainKernel(ArrayView<float> x, ArrayView<float> r, ArrayView<float> dy, ArrayView<float> dg, int rows, int d)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int j = Grid.GlobalIndex.X; j < d; j += stride)
        {
            float acc = 0f;
            for (int row = 0; row < rows; row++) acc += dy[row * d + j] * x[row * d + j] * r[row];
            dg[j] = acc;
        }
    }

    // ---- CPU backend: TensorPrimitives per row, rows in parallel ---------------------------------------------------
    static void ForwardCpu(Tensor x, Tensor g, Tensor y, Tensor r, int rows, int d, float eps)
    {
        CpuBackend.ParallelRange(rows, d, (r0, r1) =>
        {
            Span<float> sx = CpuBackend.Span(x), sg = CpuBackend.Span(g), sy = CpuBackend.Span(y), sr = CpuBackend.Span(r);
            for (int row = r0; row < r1; row++)
            {
                var xr = sx.Slice(row * d, d);
                float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / d + eps);
                sr[row] = inv;
                var yr = sy.Slice(row * d, d);
                TensorPrimitives.Multiply(xr, sg, yr);
                TensorPrimitives.Multiply(yr, inv, yr);
            }
        });
    }

    static void BackwardCpu(Tensor x, Tensor g, Tensor r, Tensor dy, Tensor dx, Tensor dg, int rows, int d)
    {
        CpuBackend.ParallelRange(rows, 3L * d, (r0, r1) =>
        {
            Span<float> sx = CpuBackend.Span(x), sg = CpuBackend.Span(g), sr = CpuBackend.Span(r), sdy = CpuBackend.Span(dy), sdx = CpuBackend.Span(dx);
            var tmp = new float[d];
            for (int row = r0; row < r1; row++)
            {
                var xr = sx.Slice(row * d, d); var gr = sdy.Slice(row * d, d); var outRow = sdx.Slice(row * d, d);
                float inv = sr[row];
                TensorPrimitives.Multiply(gr, sg, tmp);                       // dy·g
                float s = TensorPrimitives.Dot(tmp, xr);
                TensorPrimitives.Multiply(tmp, inv, outRow);                  // r·g·dy
                TensorPrimitives.MultiplyAdd(xr, -inv * inv * inv * s / d, outRow, outRow);
            }
        });
        // dg_j = Σ_rows dy·x·r: rows are summed in order (deterministic).
        var sdg = CpuBackend.Span(dg);
        sdg.Clear();
        var t = new float[d];
        for (int row = 0; row < rows; row++)
        {
            var xr = CpuBackend.Span(x).Slice(row * d, d);
            TensorPrimitives.Multiply(CpuBackend.Span(dy).Slice(row * d, d), xr, t);
            TensorPrimitives.MultiplyAdd(t, CpuBackend.Span(r)[row], sdg, sdg);
        }
    }

    // ---- float64 reference: plain loops ------------------------------------------------------------------------------
    static double[] Reference(double[][] inputs, int[][] shapes, Attr attributes)
    {
        double eps = attributes.Eps;
        var (x, g) = (inputs[0], inputs[1]);
        int d = shapes[0][^1], rows = x.Length / d;
        var y = new double[x.Length];
        for (int row = 0; row < rows; row++)
        {
            double ss = 0;
            for (int j = 0; j < d; j++) ss += x[row * d + j] * x[row * d + j];
            double inv = 1 / Math.Sqrt(ss / d + eps);
            for (int j = 0; j < d; j++) y[row * d + j] = x[row * d + j] * inv * g[j];
        }
        return y;
    }
}
