using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Mdm.Kernels.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>Reduction chunk: partial sums are taken over fixed chunks (independent of the thread count) and added in
    /// order in float64, so results are deterministic.</summary>
    const int ReduceChunk = 16384;
    /// <summary>Working-set chunk of the fused updates (a few arrays of it stay in L1/L2).</summary>
    const int UpdateChunk = 2048;

    /// <summary>Σ (a − b)² (or Σ a² when b is empty), float sub-sums of TensorPrimitives accumulated in float64.</summary>
    static double SumSquares(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double acc = 0;
        Span<float> tmp = stackalloc float[UpdateChunk];
        for (int s = 0; s < a.Length; s += UpdateChunk)
        {
            int len = Math.Min(UpdateChunk, a.Length - s);
            if (b.IsEmpty) acc += TensorPrimitives.SumOfSquares(a.Slice(s, len));
            else
            {
                var t = tmp[..len];
                TensorPrimitives.Subtract(a.Slice(s, len), b.Slice(s, len), t);
                acc += TensorPrimitives.SumOfSquares(t);
            }
        }
        return acc;
    }

    protected internal override void SquaredErrorRows(Tensor x, Tensor y, Tensor output, int rows, int rowLen, float scale)
    {
        int chunks = (rowLen + ReduceChunk - 1) / ReduceChunk;
        var partial = new double[(long)rows * chunks];
        ParallelRange(rows * chunks, Math.Min(rowLen, ReduceChunk) * 2L, (t0, t1) =>
        {
            Span<float> sx = F32(x), sy = F32(y);
            for (int t = t0; t < t1; t++)
            {
                int r = t / chunks, c = t - r * chunks;
                int start = c * ReduceChunk, len = Math.Min(ReduceChunk, rowLen - start);
                long at = (long)r * rowLen + start;
                partial[t] = SumSquares(sx.Slice((int)at, len), sy.Slice((int)at, len));
            }
        });
        var so = F32(output);
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int c = 0; c < chunks; c++) s += partial[r * chunks + c];
            so[r] = (float)(s * scale);
        }
    }

    protected internal override void SquaredErrorBackward(Tensor x, Tensor y, Tensor dy, Tensor dx, int rowLen, float scale)
    {
        int n = (int)x.Numel;
        ParallelRange((n + UpdateChunk - 1) / UpdateChunk, UpdateChunk * 2L, (c0, c1) =>
        {
            Span<float> sx = F32(x), sy = F32(y), sg = F32(dy), sd = F32(dx);
            for (int start = c0 * UpdateChunk, end = Math.Min(n, c1 * UpdateChunk); start < end;)
            {
                // one piece never crosses a row, so it has a single dy
                int row = start / rowLen;
                int len = Math.Min(Math.Min(end, (int)Math.Min((long)(row + 1) * rowLen, n)) - start, UpdateChunk);
                var d = sd.Slice(start, len);
                TensorPrimitives.Subtract(sx.Slice(start, len), sy.Slice(start, len), d);
                TensorPrimitives.Multiply(d, scale * sg[row], d);
                start += len;
            }
        });
    }

    protected internal override void QuantileAbsRows(Tensor x, Tensor q, int rows, int rowLen, int k, int kAbove, float frac)
    {
        ParallelRange(rows, (long)rowLen * 16, (r0, r1) =>
        {
            uint[] buf = System.Buffers.ArrayPool<uint>.Shared.Rent(rowLen);
            try
            {
                var bits = buf.AsSpan(0, rowLen);
                var sq = F32(q);
                for (int r = r0; r < r1; r++)
                {
                    // |x| as bit patterns: non-negative floats order like their bits, and NaN patterns sort last.
                    var row = MemoryMarshal.Cast<float, uint>(F32(x).Slice(r * rowLen, rowLen));
                    TensorPrimitives.BitwiseAnd(row, 0x7FFFFFFFu, bits);
                    bits.Sort();
                    if (bits[rowLen - 1] > 0x7F800000u) { sq[r] = float.NaN; continue; }   // torch.quantile: NaN in, NaN out
                    sq[r] = TorchLerp(BitConverter.UInt32BitsToSingle(bits[k]), BitConverter.UInt32BitsToSingle(bits[kAbove]), frac);
                }
            }
            finally { System.Buffers.ArrayPool<uint>.Shared.Return(buf); }
        });
    }

    /// <summary>torch.lerp's float formula (the branch on the weight keeps the ends exact).</summary>
    internal static float TorchLerp(float a, float b, float w) => w < 0.5f ? a + w * (b - a) : b - (b - a) * (1f - w);

    protected internal override void GlobalNorm(IReadOnlyList<Tensor> tensors, Tensor norm)
    {
        double total = 0;
        foreach (var t in tensors)
        {
            int n = (int)t.Numel;
            if (n == 0) continue;
            int chunks = (n + ReduceChunk - 1) / ReduceChunk;
            var partial = new double[chunks];
            ParallelRange(chunks, ReduceChunk, (c0, c1) =>
            {
                var s = F32(t);
                for (int c = c0; c < c1; c++)
                {
                    int start = c * ReduceChunk;
                    partial[c] = SumSquares(s.Slice(start, Math.Min(ReduceChunk, n - start)), default);
                }
            });
            foreach (double p in partial) total += p;
        }
        F32(norm)[0] = (float)Math.Sqrt(total);
    }

    protected internal override void AdamStep(Tensor p, Tensor g, Tensor m, Tensor v, Tensor? gradNorm, in AdamStepArgs args)
    {
        var a = args;
        float clip = 1f;
        if (a.Clip != 0)
        {
            clip = a.MaxNorm / (F32(gradNorm!)[0] + 1e-6f);
            if (clip > 1f) clip = 1f;   // torch.clamp(max=1): a NaN norm stays NaN
        }
        int n = (int)p.Numel;
        ParallelRange((n + UpdateChunk - 1) / UpdateChunk, UpdateChunk * 12L, (c0, c1) =>
        {
            Span<float> t = stackalloc float[UpdateChunk], u = stackalloc float[UpdateChunk];
            for (int c = c0; c < c1; c++)
            {
                int start = c * UpdateChunk, len = Math.Min(UpdateChunk, n - start);
                Span<float> sp = F32(p).Slice(start, len), sg = F32(g).Slice(start, len);
                Span<float> sm = F32(m).Slice(start, len), sv = F32(v).Slice(start, len);
                Span<float> gt = t[..len], tmp = u[..len];
                TensorPrimitives.Multiply(sg, clip, gt);                                // g·clip
                if (a.L2 != 0f) TensorPrimitives.MultiplyAdd(sp, a.L2, gt, gt);         // Adam: g + wd·p
                if (a.ParamScale != 1f) TensorPrimitives.Multiply(sp, a.ParamScale, sp); // AdamW: p·(1 − lr·wd)
                TensorPrimitives.Subtract(gt, sm, tmp);
                TensorPrimitives.MultiplyAdd(tmp, a.OneMinusBeta1, sm, sm);             // m + (1 − β1)(g − m)
                TensorPrimitives.Multiply(gt, gt, tmp);
                TensorPrimitives.Multiply(sv, a.Beta2, sv);
                TensorPrimitives.MultiplyAdd(tmp, a.OneMinusBeta2, sv, sv);             // β2·v + (1 − β2)·g²
                TensorPrimitives.Sqrt(sv, tmp);
                TensorPrimitives.Divide(tmp, a.Bc2Sqrt, tmp);
                TensorPrimitives.Add(tmp, a.Eps, tmp);                                  // √v / √bc2 + eps
                TensorPrimitives.Divide(sm, tmp, tmp);
                TensorPrimitives.MultiplyAdd(tmp, -a.StepSize, sp, sp);                 // p − lr/bc1 · m / denom
            }
        });
    }

    protected internal override void EmaUpdate(Tensor ema, Tensor param, float decay)
    {
        float w = 1f - decay;
        int n = (int)ema.Numel;
        ParallelRange((n + UpdateChunk - 1) / UpdateChunk, UpdateChunk * 3L, (c0, c1) =>
        {
            for (int c = c0; c < c1; c++)
            {
                int start = c * UpdateChunk, len = Math.Min(UpdateChunk, n - start);
                var se = F32(ema).Slice(start, len);
                TensorPrimitives.Multiply(se, decay, se);
                TensorPrimitives.MultiplyAdd(F32(param).Slice(start, len), w, se, se);
            }
        });
    }
}
