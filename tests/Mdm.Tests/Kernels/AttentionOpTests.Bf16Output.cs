using Mdm.Kernels;
using Mdm.Kernels.Reference;
using Mdm.Tests.Harness;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>
/// Attention with a BF16 output (autocast's attention output, as torch's SDPA on bf16 inputs): the forward's own store
/// rounds it, the backward reads it as it is for Δ = rowsum(dO∘O).
/// </summary>
public partial class AttentionOpTests
{
    /// <summary>
    /// The BF16 o is the F32 o of the same call rounded once to nearest even, bit for bit; against float64 of the bf16
    /// inputs it is within the f32 budget e plus half a bf16 ulp of the f32 value, at most 2^-8·(|ref| + e), where a
    /// naive bf16 attention (the exact result rounded) is within 2^-9·|ref|. lse is F32 and as in the F32 call.
    /// </summary>
    [TestCaseSource(nameof(BF16Cases))]
    public void AttentionForwardBF16Output(int b, int h, int nq, int nk, int d, MaskKind maskKind)
    {
        var (q, rq) = BF16Input(b, h, nq, d);
        var (k, rk) = BF16Input(b, h, nk, d);
        var (v, rv) = BF16Input(b, h, nk, d);
        var maskF = MakeMask(b, nk, maskKind);
        using var mask = maskF is null ? null : Upload(maskF, b, nk);
        using (q) using (k) using (v)
        {
            using var o = PoisonedBF16(b, h, nq, d);
            using var lse = Poisoned(b, h, nq);
            Ops.Attention(q, k, v, mask, o, lse);
            using var wide = Poisoned(b, h, nq, d);
            using var wideLse = Poisoned(b, h, nq);
            Ops.Attention(q, k, v, mask, wide, wideLse);
            var bits = o.ToBF16Bits();
            var f32 = wide.ToArray();
            for (int i = 0; i < bits.Length; i++)
                Assert.That(bits[i], Is.EqualTo(BFloat16.FromFloat(f32[i])), $"{Name("AttentionForward bf16 o", q.Shape, k.Shape)}: element {i} is not the rounded f32 o\n{TestSeed.Describe()}");
            Assert.That(lse.ToArray(), Is.EqualTo(wideLse.ToArray()), Name("AttentionForward bf16 o: lse", q.Shape, k.Shape));

            var eo = Ref.Attention(rq, rk, rv, maskF is null ? null : TestSeed.ToDouble(maskF), b, h, nq, nk, d, out var eLse, out var oScale);
            var bound = new double[eo.Length];
            for (int i = 0; i < bound.Length; i++)
            {
                double e = OutTol.Atol + OutTol.Rtol * oScale[i];
                bound[i] = e + Math.Pow(2, -8) * (Math.Abs(eo[i]) + e);
            }
            Compare.AssertClose(Name("AttentionForward bf16 o vs float64", q.Shape, k.Shape), Array.ConvertAll(bits, BFloat16.ToFloat), eo, new Tolerance(0, 1), bound);
            Compare.AssertClose(Name("AttentionForward bf16 o: lse vs float64", q.Shape, k.Shape), lse, eLse, LseTol, eLse.Select(x => Math.Abs(x) + 1).ToArray());
        }
    }

    /// <summary>
    /// The backward with the forward's BF16 o and an F32 dO holding bf16 values (as autocast hands it over): dq, dk, dv
    /// against a float64 backward of the same inputs whose Δ = rowsum(dO∘O) reads that bf16 o (the op's definition), with
    /// the f32 budget of the F32 fixture.
    /// </summary>
    [TestCaseSource(nameof(BF16Cases))]
    public void AttentionBackwardBF16Output(int b, int h, int nq, int nk, int d, MaskKind maskKind)
    {
        var (q, rq) = BF16Input(b, h, nq, d);
        var (k, rk) = BF16Input(b, h, nk, d);
        var (v, rv) = BF16Input(b, h, nk, d);
        var (dO, rdO) = BF16Of(TestSeed.Uniform(Rng, b * h * nq * d), [b, h, nq, d]);
        var maskF = MakeMask(b, nk, maskKind);
        var rmask = maskF is null ? null : TestSeed.ToDouble(maskF);
        using var mask = maskF is null ? null : Upload(maskF, b, nk);
        using (q) using (k) using (v) using (dO)
        {
            using var dOf = Ops.ToF32(dO);
            var (o, lse) = Ops.Attention(q, k, v, mask, outDType: DType.BF16);
            using (o) using (lse)
            {
                Assert.That(o.DType, Is.EqualTo(DType.BF16));
                using var dq = Poisoned(b, h, nq, d);
                using var dk = Poisoned(b, h, nk, d);
                using var dv = Poisoned(b, h, nk, d);
                Ops.AttentionBackward(q, k, v, o, lse, dOf, mask, dq, dk, dv);
                var ro = Array.ConvertAll(o.ToBF16Bits(), x => (double)BFloat16.ToFloat(x));
                var (eq, ek, ev, s) = BackwardWithOutput(rq, rk, rv, rmask, rdO, ro, b, h, nq, nk, d);
                Compare.AssertClose(Name("AttentionBackward bf16 o: dq", q.Shape, k.Shape), dq, eq, GradTol, s.dq);
                Compare.AssertClose(Name("AttentionBackward bf16 o: dk", q.Shape, k.Shape), dk, ek, GradTol, s.dk);
                Compare.AssertClose(Name("AttentionBackward bf16 o: dv", q.Shape, k.Shape), dv, ev, GradTol, s.dv);
            }
        }
    }

    [Test]
    public void AttentionBF16OutputNeedsBF16Operands()
    {
        using var q = B.Zeros(1, 1, 3, 4);
        var e = Assert.Throws<ArgumentException>(() => Ops.Attention(q, q, q, outDType: DType.BF16))!;
        Assert.That(e.Message, Does.Contain("Attention: o must be F32, or BF16 with BF16 q, k, v; got BF16 o for F32 q [1,1,3,4]"));
    }

    [Test]
    public void AttentionBF16OutputWithoutKeysIsZero()
    {
        var (q, _) = BF16Input(2, 1, 3, 4);
        using (q)
        {
            using var k = B.Empty(DType.BF16, 2, 1, 0, 4);
            var (o, lse) = Ops.Attention(q, k, k, outDType: DType.BF16);
            using (o) using (lse)
            {
                Assert.That(o.ToBF16Bits(), Is.All.EqualTo((ushort)0));
                Assert.That(lse.ToArray(), Is.All.EqualTo(float.PositiveInfinity));
            }
        }
    }

    /// <summary>Float64 attention backward whose Δ_i = Σ_d dO_id·o_id reads the given o (exact o: Ref.AttentionBackward);
    /// the scales are Ref's, with |Δ| for |Σ p·dP|.</summary>
    internal static (double[] dq, double[] dk, double[] dv, (double[] dq, double[] dk, double[] dv) scale) BackwardWithOutput(
        double[] q, double[] k, double[] v, double[]? mask, double[] dO, double[] o, int B, int H, int Nq, int Nk, int D)
    {
        double c2 = 1.0 / Math.Sqrt(D);
        var (dq, dk, dv) = (new double[q.Length], new double[k.Length], new double[v.Length]);
        var scale = (dq: new double[q.Length], dk: new double[k.Length], dv: new double[v.Length]);
        int At(int b, int hh, int i, int c, int n) => ((b * H + hh) * n + i) * D + c;
        var s = new double[Nk];
        for (int b = 0; b < B; b++)
        for (int hh = 0; hh < H; hh++)
        for (int i = 0; i < Nq; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < Nk; j++)
            {
                s[j] = double.NegativeInfinity;
                if (mask is not null && mask[b * Nk + j] == 0) continue;
                double acc = 0;
                for (int c = 0; c < D; c++) acc += q[At(b, hh, i, c, Nq)] * k[At(b, hh, j, c, Nk)];
                s[j] = c2 * acc;
                max = Math.Max(max, s[j]);
            }
            if (double.IsNegativeInfinity(max)) continue;   // fully masked: no gradient
            double sum = 0;
            for (int j = 0; j < Nk; j++) sum += double.IsNegativeInfinity(s[j]) ? 0 : Math.Exp(s[j] - max);
            double delta = 0;
            for (int c = 0; c < D; c++) delta += dO[At(b, hh, i, c, Nq)] * o[At(b, hh, i, c, Nq)];
            for (int j = 0; j < Nk; j++)
            {
                if (double.IsNegativeInfinity(s[j])) continue;
                double p = Math.Exp(s[j] - max) / sum, dp = 0;
                for (int c = 0; c < D; c++) dp += dO[At(b, hh, i, c, Nq)] * v[At(b, hh, j, c, Nk)];
                double ds = p * (dp - delta), dsAbs = p * (Math.Abs(dp) + Math.Abs(delta));
                for (int c = 0; c < D; c++)
                {
                    int qi = At(b, hh, i, c, Nq), kj = At(b, hh, j, c, Nk);
                    dq[qi] += c2 * ds * k[kj]; dk[kj] += c2 * ds * q[qi]; dv[kj] += p * dO[qi];
                    scale.dq[qi] += c2 * dsAbs * Math.Abs(k[kj]); scale.dk[kj] += c2 * dsAbs * Math.Abs(q[qi]); scale.dv[kj] += p * Math.Abs(dO[qi]);
                }
            }
        }
        return (dq, dk, dv, scale);
    }
}
