using Mdm.Kernels.Cpu;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels;

/// <summary>Where a dropout mask comes from: Philox stream (Seed, Subsequence), starting at block Offset.</summary>
public readonly record struct DropoutKey(ulong Seed, ulong Subsequence, ulong Offset);

public static partial class Ops
{
    /// <summary>
    /// y = x·mask/(1 − p), mask drawn from <paramref name="key"/> (element i keeps when Philox uniform i &gt; p), the same
    /// on every backend. Dropout's backward is this call on dy with the same key and p.
    /// </summary>
    public static Tensor Dropout(Tensor x, float p, DropoutKey key, Tensor? y = null)
    {
        SameBackend("Dropout", x, y); RequireF32("Dropout", x);
        if (!(p >= 0f && p < 1f)) throw new ArgumentException($"Dropout: p must be in [0, 1), got {p}");
        y = Output("Dropout", x, y, x.Dims);
        if (x.Numel == 0) return y;
        float scale = 1f / (1f - p);
        if (x.Backend is IlgpuBackend gpu)
            gpu.Run(DropoutKernels.Apply, gpu.LaunchConfig((x.Numel + 3) / 4), IlgpuBackend.View(x), IlgpuBackend.View(y),
                key.Seed, key.Subsequence, key.Offset, p, scale);
        else DropoutCpu(x, y, key, p, scale);
        return y;
    }

    static void DropoutCpu(Tensor x, Tensor y, DropoutKey key, float p, float scale)
    {
        CpuBackend.ParallelRange((int)((x.Numel + 3) / 4), 64, (b0, b1) =>
        {
            Span<float> sx = CpuBackend.Span(x), sy = CpuBackend.Span(y);
            Span<uint> w = stackalloc uint[4];
            for (int blk = b0; blk < b1; blk++)
            {
                Philox.Words(key.Seed, key.Subsequence, key.Offset + (ulong)blk, out w[0], out w[1], out w[2], out w[3]);
                for (int i = blk * 4, lane = 0; lane < 4 && i < sx.Length; i++, lane++)
                    sy[i] = DropoutKernels.Keeps(w[lane], p) ? sx[i] * scale : 0f;
            }
        });
    }
}
