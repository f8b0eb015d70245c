using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Tests.Harness;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// The tensor-core attention backward (dQ then dK/dV, on the emulated warp primitives) against float64 on the CPU
/// accelerator, for every head dimension: masked cross-attention where the last batch masks every key (its gradients
/// must be 0), and for head dims 32 and 64 self-attention over two blocks each way with ragged ends.
/// Error rule (FlashAttention): against the float64 gradients of the unrounded inputs, at most 2 × the error of a naive
/// same-precision backward (bf16 q, k, v, dO in the products, f32 sums, P and dS rounded to bf16 where the kernel
/// rounds them) + a floor. Each case also runs with a bf16 o (autocast's output, which the dQ kernel's Δ reads as it
/// is); its naive version takes Δ from the same bf16 o.
/// </summary>
public class AttentionBackwardTensorCoreTests
{
    static IEnumerable<TestCaseData> Cases()
    {
        foreach (int d in new[] { 32, 64, 96, 128 })
        {
            // Two blocks each way (the pipelines' refills) on the narrow heads; each wide-head emulated group costs seconds.
            foreach (bool bf16O in new[] { false, true })
            {
                string o = bf16O ? "-bf16o" : "";
                if (d <= 64) yield return new TestCaseData(d, new AttentionCase(1, 1, 67, 70, false), bf16O).SetArgDisplayNames($"D{d}-self-1x67x70{o}");
                yield return new TestCaseData(d, new AttentionCase(2, 2, 19, 23, true), bf16O).SetArgDisplayNames($"D{d}-cross-masked-2x2x19x23{o}");
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void BackwardMatchesFloat64(int d, AttentionCase c, bool bf16O)
    {
        var rng = TestSeed.NewRandom();
        int bh = c.Batch * c.Heads;
        float scale = 1f / MathF.Sqrt(d);
        var fq = TestSeed.Uniform(rng, bh * c.Nq * d, -2f, 2f);
        var fk = TestSeed.Uniform(rng, bh * c.Nk * d, -2f, 2f);
        var fv = TestSeed.Uniform(rng, bh * c.Nk * d);
        var fdo = TestSeed.Uniform(rng, bh * c.Nq * d);
        var mask = c.KeyMask(rng);
        ushort[] qb = AttentionCase.ToBF16(fq), kb = AttentionCase.ToBF16(fk), vb = AttentionCase.ToBF16(fv), dob = AttentionCase.ToBF16(fdo);
        float[] rq = AttentionCase.Widen(qb), rk = AttentionCase.Widen(kb), rv = AttentionCase.Widen(vb), rdo = AttentionCase.Widen(dob);

        var exact = Gradients(fq, fk, fv, fdo, fdo, mask, c, d, scale, naive: false, bf16O: false, out _, out _);
        var naive = Gradients(rq, rk, rv, rdo, fdo, mask, c, d, scale, naive: true, bf16O, out var o, out var lse);

        var acc = WarpEmulator.Accelerator;
        using var q = acc.Allocate1D(qb);
        using var k = acc.Allocate1D(kb);
        using var v = acc.Allocate1D(vb);
        using var dO = acc.Allocate1D(dob);
        using var dOf = acc.Allocate1D(fdo);
        using var oBuf = acc.Allocate1D(o);
        using var oBits = acc.Allocate1D(AttentionCase.ToBF16(o));
        using var lseBuf = acc.Allocate1D(lse);
        using var maskBuf = acc.Allocate1D(mask);
        using var delta = acc.Allocate1D(AttentionCase.Poison(bh * c.Nq));
        using var dq = acc.Allocate1D(AttentionCase.Poison(bh * c.Nq * d));
        using var dk = acc.Allocate1D(AttentionCase.Poison(bh * c.Nk * d));
        using var dv = acc.Allocate1D(AttentionCase.Poison(bh * c.Nk * d));
        var args = new TensorCoreAttentionArgs
        {
            Q = WarpEmulator.Address(q), K = WarpEmulator.Address(k), V = WarpEmulator.Address(v), DO = WarpEmulator.Address(dO),
            Nq = c.Nq, Nk = c.Nk, Heads = c.Heads, HasMask = c.Masked ? 1 : 0, Scale = scale, ScaleLog2 = scale * MathF.Log2(MathF.E),
        };
        var (dqKernel, dqBf16Kernel, dkdvKernel) = Kernels(d);
        var launchDkDv = acc.LoadStreamKernel(dkdvKernel);
        var shared = SharedMemoryConfig.RequestDynamic<byte>(AttentionBackwardTensorCoreKernels.SharedBytes(d));
        var group = new Index2D(AttentionTensorCoreKernels.Threads, 1);
        var dqConfig = new KernelConfig(new Index2D((c.Nq + 63) / 64, bh), group, shared);
        if (bf16O) acc.LoadStreamKernel(dqBf16Kernel)(dqConfig, oBits.View, dOf.View, lseBuf.View, maskBuf.View, dq.View, delta.View, args);
        else acc.LoadStreamKernel(dqKernel)(dqConfig, oBuf.View, dOf.View, lseBuf.View, maskBuf.View, dq.View, delta.View, args);
        launchDkDv(new KernelConfig(new Index2D((c.Nk + 63) / 64 * AttentionBackwardTensorCoreKernels.ColumnSplits(d), bh), group, shared), lseBuf.View, delta.View, maskBuf.View, dk.View, dv.View, args);

        string what = $"tensor-core attention backward D {d} {c}{(bf16O ? " bf16 o" : "")}";
        Check(what + " dq", dq.GetAsArray1D(), exact.Dq, naive.Dq);
        Check(what + " dk", dk.GetAsArray1D(), exact.Dk, naive.Dk);
        Check(what + " dv", dv.GetAsArray1D(), exact.Dv, naive.Dv);
        if (c.Masked)   // the fully masked batch: no key is attended, so nothing flows back
            for (int i = (c.Batch - 1) * c.Heads * c.Nk * d; i < bh * c.Nk * d; i++)
                Assert.That(dk.GetAsArray1D()[i], Is.EqualTo(0f), $"{what}: dk of the fully masked batch at {i}");
    }

    static void Check(string what, float[] got, double[] exact, double[] naive)
    {
        double errKernel = 0, errNaive = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            errKernel = Math.Max(errKernel, double.IsNaN(got[i]) ? double.PositiveInfinity : Math.Abs(got[i] - exact[i]));
            errNaive = Math.Max(errNaive, Math.Abs(naive[i] - exact[i]));
        }
        TestContext.Out.WriteLine($"{what}: max error vs exact inputs {errKernel:G3}, naive same-precision {errNaive:G3}");
        Assert.That(errKernel, Is.LessThanOrEqualTo(2 * errNaive + 1e-4), $"{what}: error {errKernel:G3} vs naive {errNaive:G3}\n{TestSeed.Describe()}");
    }

    static double Bf16(double x) => BFloat16.ToFloat(BFloat16.FromFloat((float)x));

    /// <summary>Forward (o, lse as f32) and the gradients, in float64 or the naive same-precision way (every sum and
    /// product in f32, P and dS rounded to bf16 before the products that use them; Δ from the f32 dO and the f32 o, or
    /// with <paramref name="bf16O"/> the o rounded to bf16).</summary>
    static (double[] Dq, double[] Dk, double[] Dv) Gradients(float[] q, float[] k, float[] v, float[] dO, float[] dOf, float[] mask,
        AttentionCase c, int d, float scale, bool naive, bool bf16O, out float[] o, out float[] lse)
    {
        int bh = c.Batch * c.Heads;
        double R(double x) => naive ? (float)x : x;
        var dq = new double[bh * c.Nq * d];
        var dk = new double[bh * c.Nk * d];
        var dv = new double[bh * c.Nk * d];
        o = new float[bh * c.Nq * d];
        lse = new float[bh * c.Nq];
        var p = new double[c.Nk];
        var oRow = new double[d];
        for (int g = 0; g < bh; g++)
            for (int i = 0; i < c.Nq; i++)
            {
                int qi = (g * c.Nq + i) * d;
                double max = double.NegativeInfinity;
                for (int j = 0; j < c.Nk; j++)
                {
                    p[j] = double.NegativeInfinity;
                    if (mask[g / c.Heads * c.Nk + j] == 0f) continue;
                    double dot = 0;
                    for (int x = 0; x < d; x++) dot = R(dot + (double)q[qi + x] * k[(g * c.Nk + j) * d + x]);
                    p[j] = R(dot * scale);
                    max = Math.Max(max, p[j]);
                }
                if (max == double.NegativeInfinity) { lse[g * c.Nq + i] = float.PositiveInfinity; continue; }
                double sum = 0;
                for (int j = 0; j < c.Nk; j++) sum = R(sum + Math.Exp(p[j] - max));
                double l = max + Math.Log(sum);
                lse[g * c.Nq + i] = (float)l;
                Array.Clear(oRow);
                for (int j = 0; j < c.Nk; j++)
                {
                    p[j] = R(Math.Exp(p[j] - l));
                    for (int x = 0; x < d; x++) oRow[x] += p[j] * v[(g * c.Nk + j) * d + x];
                }
                double delta = 0;
                for (int x = 0; x < d; x++) { o[qi + x] = (float)oRow[x]; delta = R(delta + (naive ? (bf16O ? Bf16(o[qi + x]) : o[qi + x]) : oRow[x]) * dOf[qi + x]); }
                for (int j = 0; j < c.Nk; j++)
                {
                    if (p[j] == 0) continue;
                    int kj = (g * c.Nk + j) * d;
                    double dp = 0;
                    for (int x = 0; x < d; x++) dp = R(dp + (double)dO[qi + x] * v[kj + x]);
                    double ds = R(p[j] * (dp - delta));
                    double pIn = naive ? Bf16(p[j]) : p[j], dsIn = naive ? Bf16(ds) : ds;
                    for (int x = 0; x < d; x++)
                    {
                        dq[qi + x] = R(dq[qi + x] + dsIn * k[kj + x] * scale);
                        dk[kj + x] = R(dk[kj + x] + dsIn * q[qi + x] * scale);
                        dv[kj + x] = R(dv[kj + x] + pIn * dO[qi + x]);
                    }
                }
            }
        return (dq, dk, dv);
    }

    static (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>,
            Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>,
            Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>) Kernels(int d) => d switch
    {
        32 => (AttentionBackwardTensorCoreKernels.Dq<HeadDim32, EmulatedWarpMma, float, F32Widen>, AttentionBackwardTensorCoreKernels.Dq<HeadDim32, EmulatedWarpMma, ushort, BF16Widen>,
               AttentionBackwardTensorCoreKernels.DkDv<HeadDim32, EmulatedWarpMma>),
        64 => (AttentionBackwardTensorCoreKernels.Dq<HeadDim64, EmulatedWarpMma, float, F32Widen>, AttentionBackwardTensorCoreKernels.Dq<HeadDim64, EmulatedWarpMma, ushort, BF16Widen>,
               AttentionBackwardTensorCoreKernels.DkDv<HeadDim64, EmulatedWarpMma>),
        96 => (AttentionBackwardTensorCoreKernels.Dq<HeadDim96, EmulatedWarpMma, float, F32Widen>, AttentionBackwardTensorCoreKernels.Dq<HeadDim96, EmulatedWarpMma, ushort, BF16Widen>,
               AttentionBackwardTensorCoreKernels.DkDv<HeadDim96, EmulatedWarpMma>),
        _ => (AttentionBackwardTensorCoreKernels.Dq<HeadDim128, EmulatedWarpMma, float, F32Widen>, AttentionBackwardTensorCoreKernels.Dq<HeadDim128, EmulatedWarpMma, ushort, BF16Widen>,
              AttentionBackwardTensorCoreKernels.DkDv<HeadDim128, EmulatedWarpMma>),
    };
}
