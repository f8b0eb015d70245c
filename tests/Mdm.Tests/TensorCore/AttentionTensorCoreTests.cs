using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Tests.Harness;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// The tensor-core attention forward (the kernel CUDA runs, on the emulated warp primitives) against float64 on the CPU
/// accelerator, for every head dimension: self-attention over two key blocks and two query tiles with ragged ends,
/// and cross-attention (2 batches × 2 heads) with a key mask where the last batch masks every key (its rows must give
/// O = 0, lse = +∞).
/// Error rule (FlashAttention): against float64 attention of the unrounded inputs, at most 2 × the error of a naive
/// same-precision attention (bf16 q, k, v, f32 scores and softmax, P rounded to bf16 for P·V) + a floor.
/// The bf16-output forward (autocast's o) must give the f32 forward's o rounded to nearest even, bit for bit, and meet
/// the same rule against a naive version whose o is rounded to bf16 too.
/// </summary>
public class AttentionTensorCoreTests
{
    static IEnumerable<TestCaseData> Cases()
    {
        foreach (int d in new[] { 32, 64, 96, 128 })
        {
            // The wide head dimensions take one head: each emulated group there costs seconds of OS-thread barriers.
            int heads = d <= 64 ? 2 : 1;
            yield return new TestCaseData(d, new AttentionCase(1, heads, 70, 67, false)).SetArgDisplayNames($"D{d}-self-{heads}x70x67");
            yield return new TestCaseData(d, new AttentionCase(2, 2, 19, 23, true)).SetArgDisplayNames($"D{d}-cross-masked-2x2x19x23");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void ForwardMatchesFloat64(int d, AttentionCase c)
    {
        var run = new ForwardRun(d, c);
        var (got, gotLse) = run.Launch(F32Kernel(d));
        run.AssertFlashRule($"tensor-core attention D {d} {c}", got, run.Naive);
        Compare.AssertClose($"tensor-core attention D {d} {c} lse", gotLse, run.ExactLse, new Tolerance(2e-2, 1e-3));
    }

    [TestCaseSource(nameof(Cases))]
    public void BF16OutputIsTheF32OutputRounded(int d, AttentionCase c)
    {
        var run = new ForwardRun(d, c);
        var (wide, wideLse) = run.Launch(F32Kernel(d));
        var (bits, lse) = run.Launch(BF16OutKernel(d));
        string what = $"tensor-core attention bf16 o D {d} {c}";
        var rounded = AttentionCase.ToBF16(wide);
        for (int i = 0; i < bits.Length; i++)
            if (bits[i] != rounded[i])
                Assert.Fail($"{what}: o[{i}] = 0x{bits[i]:X4}, the f32 kernel's {wide[i]:R} rounds to 0x{rounded[i]:X4}\n{TestSeed.Describe()}");
        Assert.That(lse, Is.EqualTo(wideLse), $"{what}: lse must be the f32 kernel's\n{TestSeed.Describe()}");
        run.AssertFlashRule(what, AttentionCase.Widen(bits), Array.ConvertAll(run.Naive, x => (double)BFloat16.ToFloat(BFloat16.FromFloat((float)x))));
    }

    /// <summary>Fresh random inputs of one case (bf16 on the device), their float64 and naive references, and launches.</summary>
    sealed class ForwardRun
    {
        readonly int d;
        readonly AttentionCase c;
        readonly ushort[] qb, kb, vb;
        readonly float[] maskValues;
        public readonly double[] Exact, ExactLse, Naive;

        public ForwardRun(int d, AttentionCase c)
        {
            (this.d, this.c) = (d, c);
            var rng = TestSeed.NewRandom();
            int bh = c.Batch * c.Heads;
            float scale = 1f / MathF.Sqrt(d);
            var fq = TestSeed.Uniform(rng, bh * c.Nq * d, -2f, 2f);
            var fk = TestSeed.Uniform(rng, bh * c.Nk * d, -2f, 2f);
            var fv = TestSeed.Uniform(rng, bh * c.Nk * d);
            maskValues = c.KeyMask(rng);
            (qb, kb, vb) = (AttentionCase.ToBF16(fq), AttentionCase.ToBF16(fk), AttentionCase.ToBF16(fv));
            (Exact, ExactLse) = Reference(fq, fk, fv, maskValues, c, d, scale, naive: false);
            (Naive, _) = Reference(AttentionCase.Widen(qb), AttentionCase.Widen(kb), AttentionCase.Widen(vb), maskValues, c, d, scale, naive: true);
        }

        /// <summary>Runs a forward kernel on NaN-poisoned o and lse; returns both.</summary>
        public (TO[] O, float[] Lse) Launch<TO>(Action<ArrayView<TO>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs> forward)
            where TO : unmanaged
        {
            int bh = c.Batch * c.Heads;
            float scale = 1f / MathF.Sqrt(d);
            var acc = WarpEmulator.Accelerator;
            using var q = acc.Allocate1D(qb);
            using var k = acc.Allocate1D(kb);
            using var v = acc.Allocate1D(vb);
            using var mask = acc.Allocate1D(maskValues);
            using var o = acc.Allocate1D(Poison<TO>(bh * c.Nq * d));
            using var lse = acc.Allocate1D(AttentionCase.Poison(bh * c.Nq));
            var args = new TensorCoreAttentionArgs
            {
                Q = WarpEmulator.Address(q), K = WarpEmulator.Address(k), V = WarpEmulator.Address(v),
                Nq = c.Nq, Nk = c.Nk, Heads = c.Heads, HasMask = c.Masked ? 1 : 0, ScaleLog2 = scale * MathF.Log2(MathF.E),
            };
            var kernel = acc.LoadStreamKernel(forward);
            kernel(new KernelConfig(new Index2D((c.Nq + AttentionTensorCoreKernels.BlockQ - 1) / AttentionTensorCoreKernels.BlockQ, bh),
                new Index2D(AttentionTensorCoreKernels.Threads, 1), SharedMemoryConfig.RequestDynamic<byte>(AttentionTensorCoreKernels.SharedBytes(d))),
                o.View, lse.View, mask.View, args);
            return (o.GetAsArray1D(), lse.GetAsArray1D());
        }

        /// <summary>NaN in f32, a quiet-NaN bit pattern in bf16: unwritten elements fail every check.</summary>
        static TO[] Poison<TO>(int n) where TO : unmanaged =>
            typeof(TO) == typeof(ushort) ? (TO[])(object)Enumerable.Repeat((ushort)0x7FC0, n).ToArray() : (TO[])(object)AttentionCase.Poison(n);

        /// <summary>FlashAttention's rule: max error vs float64 ≤ 2 × the naive version's + a floor.</summary>
        public void AssertFlashRule(string what, float[] got, double[] naive)
        {
            double errKernel = 0, errNaive = 0;
            for (int i = 0; i < Exact.Length; i++)
            {
                errKernel = Math.Max(errKernel, double.IsNaN(got[i]) ? double.PositiveInfinity : Math.Abs(got[i] - Exact[i]));
                errNaive = Math.Max(errNaive, Math.Abs(naive[i] - Exact[i]));
            }
            TestContext.Out.WriteLine($"{what}: max error vs exact inputs {errKernel:G3}, naive same-precision {errNaive:G3}");
            Assert.That(errKernel, Is.LessThanOrEqualTo(2 * errNaive + 1e-4), $"{what}: error {errKernel:G3} vs naive {errNaive:G3}\n{TestSeed.Describe()}");
        }
    }

    /// <summary>Softmax attention per (batch·head, query): float64 throughout, or the naive same-precision version
    /// (f32 scores, max, exponentials and sums; P rounded to bf16 before P·V). Rows with no key: O = 0, lse = +∞.</summary>
    static (double[] O, double[] Lse) Reference(float[] q, float[] k, float[] v, float[] mask, AttentionCase c, int d, float scale, bool naive)
    {
        int bh = c.Batch * c.Heads;
        var o = new double[bh * c.Nq * d];
        var lse = new double[bh * c.Nq];
        var s = new double[c.Nk];
        for (int g = 0; g < bh; g++)
            for (int i = 0; i < c.Nq; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < c.Nk; j++)
                {
                    s[j] = double.NegativeInfinity;
                    if (mask[g / c.Heads * c.Nk + j] == 0f) continue;
                    double dot = 0; float dotF = 0f;
                    for (int x = 0; x < d; x++)
                    {
                        dot += (double)q[(g * c.Nq + i) * d + x] * k[(g * c.Nk + j) * d + x];
                        dotF += q[(g * c.Nq + i) * d + x] * k[(g * c.Nk + j) * d + x];
                    }
                    s[j] = naive ? (double)(dotF * scale) : dot * scale;
                    max = Math.Max(max, s[j]);
                }
                long row = (long)g * c.Nq + i;
                if (max == double.NegativeInfinity) { lse[row] = double.PositiveInfinity; continue; }
                double sum = 0;
                for (int j = 0; j < c.Nk; j++)
                {
                    double p = naive ? (double)MathF.Exp((float)(s[j] - max)) : Math.Exp(s[j] - max);
                    sum = naive ? (float)(sum + p) : sum + p;
                    double pv = naive ? BFloat16.ToFloat(BFloat16.FromFloat((float)p)) : p;
                    for (int x = 0; x < d; x++)
                        o[row * d + x] = naive ? (float)(o[row * d + x] + (float)pv * v[(g * c.Nk + j) * d + x]) : o[row * d + x] + pv * v[(g * c.Nk + j) * d + x];
                }
                for (int x = 0; x < d; x++) o[row * d + x] /= sum;
                lse[row] = max + Math.Log(sum);
            }
        return (o, lse);
    }

    static Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs> F32Kernel(int d) => d switch
    {
        32 => AttentionTensorCoreKernels.Forward<HeadDim32, EmulatedWarpMma, float, F32Narrow>,
        64 => AttentionTensorCoreKernels.Forward<HeadDim64, EmulatedWarpMma, float, F32Narrow>,
        96 => AttentionTensorCoreKernels.Forward<HeadDim96, EmulatedWarpMma, float, F32Narrow>,
        _ => AttentionTensorCoreKernels.Forward<HeadDim128, EmulatedWarpMma, float, F32Narrow>,
    };

    static Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs> BF16OutKernel(int d) => d switch
    {
        32 => AttentionTensorCoreKernels.Forward<HeadDim32, EmulatedWarpMma, ushort, BF16Narrow>,
        64 => AttentionTensorCoreKernels.Forward<HeadDim64, EmulatedWarpMma, ushort, BF16Narrow>,
        96 => AttentionTensorCoreKernels.Forward<HeadDim96, EmulatedWarpMma, ushort, BF16Narrow>,
        _ => AttentionTensorCoreKernels.Forward<HeadDim128, EmulatedWarpMma, ushort, BF16Narrow>,
    };
}
