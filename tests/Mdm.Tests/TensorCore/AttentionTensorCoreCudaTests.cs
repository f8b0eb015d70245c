using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Kernels;

namespace Mdm.Tests.TensorCore;

/// <summary>
/// On a GPU: the attention op with <see cref="IlgpuBackend.UseTensorCoreAttention"/> on takes the tensor-core forward
/// and backward for every head dimension they have, self and masked cross-attention with a fully masked batch, and
/// matches float64 on the bf16-rounded inputs within the bf16 rounding of P and dS. Fails if the tensor-core route
/// did not run. With a bf16 o (autocast's output) the forward's o is the f32 tensor-core o rounded to nearest even, bit
/// for bit, and the backward reading that o matches a float64 backward whose Δ reads the same o.
/// </summary>
[BackendFixtures(BackendKind.Cuda)]
public class AttentionTensorCoreTests_Cuda() : KernelFixture(BackendKind.Cuda)
{
    static IEnumerable<TestCaseData> Cases()
    {
        foreach (int d in new[] { 32, 64, 96, 128 })
        {
            yield return new TestCaseData(2, 4, 200, 200, d, false).SetArgDisplayNames($"D{d}-self-2x4x200");
            yield return new TestCaseData(3, 2, 77, 45, d, true).SetArgDisplayNames($"D{d}-cross-masked-3x2x77x45");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void AttentionForwardOnTensorCores(int b, int h, int nq, int nk, int d, bool masked)
    {
        var gpu = (IlgpuBackend)B;
        float[] fq = Rounded(b * h * nq * d), fk = Rounded(b * h * nk * d), fv = Rounded(b * h * nk * d);
        float[]? maskF = masked ? new AttentionCase(b, h, nq, nk, true).KeyMask(Rng) : null;
        using var q = Upload(fq, b, h, nq, d);
        using var k = Upload(fk, b, h, nk, d);
        using var v = Upload(fv, b, h, nk, d);
        using var mask = maskF is null ? null : Upload(maskF, b, nk);
        using var o = Poisoned(b, h, nq, d);
        using var lse = Poisoned(b, h, nq);
        long before = gpu.TensorCoreAttentions;
        gpu.UseTensorCoreAttention = true;
        try { Ops.Attention(q, k, v, mask, o, lse); }
        finally { gpu.UseTensorCoreAttention = null; }
        Assert.That(gpu.TensorCoreAttentions - before, Is.EqualTo(1), "the forward should have run on tensor cores");
        var eo = Ref.Attention(TestSeed.ToDouble(fq), TestSeed.ToDouble(fk), TestSeed.ToDouble(fv), maskF is null ? null : TestSeed.ToDouble(maskF),
            b, h, nq, nk, d, out var eLse, out var oScale);
        // P is rounded to bf16 for P·V (relative 2^-9) and ex2/lg2 are approximate: budgets well above both.
        Compare.AssertClose(Name("AttentionForward.o on tensor cores", q.Shape, k.Shape), o, eo, new Tolerance(1e-4, 8e-3), oScale);
        Compare.AssertClose(Name("AttentionForward.lse on tensor cores", q.Shape, k.Shape), lse, eLse, new Tolerance(1e-4, 1e-4), eLse.Select(x => Math.Abs(x) + 1).ToArray());
    }

    [TestCaseSource(nameof(Cases))]
    public void AttentionBackwardOnTensorCores(int b, int h, int nq, int nk, int d, bool masked)
    {
        var gpu = (IlgpuBackend)B;
        float[] fq = Rounded(b * h * nq * d), fk = Rounded(b * h * nk * d), fv = Rounded(b * h * nk * d), fdo = Rounded(b * h * nq * d);
        float[]? maskF = masked ? new AttentionCase(b, h, nq, nk, true).KeyMask(Rng) : null;
        using var q = Upload(fq, b, h, nq, d);
        using var k = Upload(fk, b, h, nk, d);
        using var v = Upload(fv, b, h, nk, d);
        using var dO = Upload(fdo, b, h, nq, d);
        using var mask = maskF is null ? null : Upload(maskF, b, nk);
        using var dq = Poisoned(b, h, nq, d);
        using var dk = Poisoned(b, h, nk, d);
        using var dv = Poisoned(b, h, nk, d);
        long before = gpu.TensorCoreAttentions;
        gpu.UseTensorCoreAttention = true;
        try
        {
            var (o, lse) = Ops.Attention(q, k, v, mask);
            using (o) using (lse) Ops.AttentionBackward(q, k, v, o, lse, dO, mask, dq, dk, dv);
        }
        finally { gpu.UseTensorCoreAttention = null; }
        Assert.That(gpu.TensorCoreAttentions - before, Is.EqualTo(2), "forward and backward should have run on tensor cores");
        var (eq, ek, ev) = Ref.AttentionBackward(TestSeed.ToDouble(fq), TestSeed.ToDouble(fk), TestSeed.ToDouble(fv), maskF is null ? null : TestSeed.ToDouble(maskF),
            TestSeed.ToDouble(fdo), b, h, nq, nk, d, out var s);
        var tol = new Tolerance(1e-3, 2e-2);   // P and dS enter the mma as bf16 (relative 2^-9 each), ex2 is approximate
        Compare.AssertClose(Name("AttentionBackward.dq on tensor cores", q.Shape, k.Shape), dq, eq, tol, s.dq);
        Compare.AssertClose(Name("AttentionBackward.dk on tensor cores", q.Shape, k.Shape), dk, ek, tol, s.dk);
        Compare.AssertClose(Name("AttentionBackward.dv on tensor cores", q.Shape, k.Shape), dv, ev, tol, s.dv);
    }

    [TestCaseSource(nameof(Cases))]
    public void AttentionBF16OutputOnTensorCores(int b, int h, int nq, int nk, int d, bool masked)
    {
        var gpu = (IlgpuBackend)B;
        var (q, rq) = BF16Input(b, h, nq, d);
        var (k, rk) = BF16Input(b, h, nk, d);
        var (v, rv) = BF16Input(b, h, nk, d);
        var (dO, rdO) = BF16Of(TestSeed.Uniform(Rng, b * h * nq * d), [b, h, nq, d]);
        float[]? maskF = masked ? new AttentionCase(b, h, nq, nk, true).KeyMask(Rng) : null;
        using var mask = maskF is null ? null : Upload(maskF, b, nk);
        using (q) using (k) using (v) using (dO)
        {
            using var dOf = Ops.ToF32(dO);
            using var o = PoisonedBF16(b, h, nq, d);
            using var lse = Poisoned(b, h, nq);
            using var wide = Poisoned(b, h, nq, d);
            using var wideLse = Poisoned(b, h, nq);
            using var dq = Poisoned(b, h, nq, d);
            using var dk = Poisoned(b, h, nk, d);
            using var dv = Poisoned(b, h, nk, d);
            long before = gpu.TensorCoreAttentions;
            gpu.UseTensorCoreAttention = true;
            try
            {
                Ops.Attention(q, k, v, mask, wide, wideLse);
                Ops.Attention(q, k, v, mask, o, lse);
                Ops.AttentionBackward(q, k, v, o, lse, dOf, mask, dq, dk, dv);
            }
            finally { gpu.UseTensorCoreAttention = null; }
            Assert.That(gpu.TensorCoreAttentions - before, Is.EqualTo(3), "both forwards and the backward should have run on tensor cores");
            string what = Name("Attention bf16 o on tensor cores", q.Shape, k.Shape);
            var bits = o.ToBF16Bits();
            var rounded = AttentionCase.ToBF16(wide.ToArray());
            for (int i = 0; i < bits.Length; i++)
                if (bits[i] != rounded[i]) Assert.Fail($"{what}: o[{i}] = 0x{bits[i]:X4}, the f32 kernel's o rounds to 0x{rounded[i]:X4}\n{TestSeed.Describe()}");
            Assert.That(lse.ToArray(), Is.EqualTo(wideLse.ToArray()), $"{what}: lse must be the f32 kernel's");
            var ro = Array.ConvertAll(bits, x => (double)BFloat16.ToFloat(x));
            var (eq, ek, ev, s) = AttentionOpTests.BackwardWithOutput(rq, rk, rv, maskF is null ? null : TestSeed.ToDouble(maskF), rdO, ro, b, h, nq, nk, d);
            var tol = new Tolerance(1e-3, 2e-2);   // as the f32-o backward: P and dS enter the mma as bf16
            Compare.AssertClose(what + " dq", dq, eq, tol, s.dq);
            Compare.AssertClose(what + " dk", dk, ek, tol, s.dk);
            Compare.AssertClose(what + " dv", dv, ev, tol, s.dv);
        }
    }

    /// <summary>Random values that bf16 holds exactly, so the kernels' rounding of q, k, v, dO changes nothing.</summary>
    float[] Rounded(int n) => Array.ConvertAll(TestSeed.Uniform(Rng, n, -2f, 2f), x => BFloat16.ToFloat(BFloat16.FromFloat(x)));
}
