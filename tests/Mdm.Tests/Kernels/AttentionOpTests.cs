using Mdm.Kernels;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>
/// Multi-head attention (self, cross with a key padding mask, temporal with rotary) and rotary encoding: forward,
/// lse, dq, dk, dv against float64 loops.
/// </summary>
[BackendFixtures]
public partial class AttentionOpTests(BackendKind kind) : KernelFixture(kind)
{
    // Error budgets: scale = Σ|terms| of each output's sum (see Ref.Attention / AttentionBackward).
    static readonly Tolerance OutTol = new(5e-7, 5e-6), LseTol = new(1e-6, 1e-6), GradTol = new(5e-7, 1e-5);
    static readonly Tolerance RotaryTol = new(2e-6, 2e-6);

    public enum MaskKind { None, SomeKeys, SomeKeysAndOneBatchAll, LeadingKeysMasked }

    public static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(2, 2, 81, 81, 8, MaskKind.None).SetArgDisplayNames("self 2x2 N81(9x9) D8");
        yield return new TestCaseData(1, 2, 113, 113, 24, MaskKind.None).SetArgDisplayNames("self 1x2 N113 D24");
        yield return new TestCaseData(1, 1, 20, 20, 96, MaskKind.None).SetArgDisplayNames("self 1x1 N20 D96");
        yield return new TestCaseData(1, 1, 17, 17, 128, MaskKind.None).SetArgDisplayNames("self 1x1 N17 D128");
        yield return new TestCaseData(2, 2, 81, 7, 8, MaskKind.SomeKeys).SetArgDisplayNames("cross 2x2 Nq81 Nk7 D8 mask");
        yield return new TestCaseData(2, 2, 81, 7, 8, MaskKind.SomeKeysAndOneBatchAll).SetArgDisplayNames("cross 2x2 Nq81 Nk7 D8 mask+fully masked batch");
        yield return new TestCaseData(2, 1, 9, 37, 16, MaskKind.SomeKeys).SetArgDisplayNames("cross 2x1 Nq9 Nk37 D16 mask");
    }

    /// <summary>BF16 q, k, v (autocast's bf16 storage): odd token counts, a head dim at the GPU limit, masks with a fully
    /// masked batch.</summary>
    public static IEnumerable<TestCaseData> BF16Cases()
    {
        yield return new TestCaseData(1, 2, 113, 113, 24, MaskKind.None).SetArgDisplayNames("bf16 self 1x2 N113 D24");
        yield return new TestCaseData(1, 1, 17, 17, 128, MaskKind.None).SetArgDisplayNames("bf16 self 1x1 N17 D128");
        yield return new TestCaseData(2, 2, 81, 7, 8, MaskKind.SomeKeysAndOneBatchAll).SetArgDisplayNames("bf16 cross 2x2 Nq81 Nk7 D8 mask+fully masked batch");
        yield return new TestCaseData(2, 1, 9, 37, 16, MaskKind.SomeKeys).SetArgDisplayNames("bf16 cross 2x1 Nq9 Nk37 D16 mask");
    }

    float[]? MakeMask(int b, int nk, MaskKind kind)
    {
        if (kind == MaskKind.None) return null;
        var m = new float[b * nk];
        for (int i = 0; i < m.Length; i++) m[i] = Rng.NextDouble() < 0.6 ? 1f : 0f;
        for (int bi = 0; bi < b; bi++) { m[bi * nk] = 1f; if (nk > 1) m[bi * nk + nk - 1] = 0f; }   // at least one key in, one out
        if (kind == MaskKind.SomeKeysAndOneBatchAll) Array.Clear(m, (b - 1) * nk, nk);
        if (kind == MaskKind.LeadingKeysMasked)
        {
            // Batch 0 attends only to keys past the first 150 (whole leading key blocks masked), the last batch to none.
            Array.Clear(m, 0, Math.Min(150, nk - 1));
            Array.Clear(m, (b - 1) * nk, nk);
        }
        return m;
    }

    [TestCaseSource(nameof(Cases))]
    public void AttentionForward(int b, int h, int nq, int nk, int d, MaskKind maskKind) => CheckForward(b, h, nq, nk, d, maskKind);

    [TestCaseSource(nameof(Cases))]
    public void AttentionBackward(int b, int h, int nq, int nk, int d, MaskKind maskKind) => CheckBackward(b, h, nq, nk, d, maskKind);

    /// <summary>BF16 q, k, v are read as they are and everything after the read is f32, so the reference is the float64
    /// attention of the bf16 values and the bound is the f32 one (the same rounding of f32 sums relative to Σ|terms|).</summary>
    [TestCaseSource(nameof(BF16Cases))]
    public void AttentionForwardBF16Operands(int b, int h, int nq, int nk, int d, MaskKind maskKind) => CheckForward(b, h, nq, nk, d, maskKind, bf16: true);

    /// <summary>As <see cref="AttentionForwardBF16Operands"/>, for dq, dk, dv (dO and the gradients F32).</summary>
    [TestCaseSource(nameof(BF16Cases))]
    public void AttentionBackwardBF16Operands(int b, int h, int nq, int nk, int d, MaskKind maskKind) => CheckBackward(b, h, nq, nk, d, maskKind, bf16: true);

    (Tensor t, double[] r) Operand(bool bf16, params int[] shape) => bf16 ? BF16Input(shape) : Input(shape);

    protected void CheckForward(int b, int h, int nq, int nk, int d, MaskKind maskKind, bool bf16 = false)
    {
        var (q, rq) = Operand(bf16, b, h, nq, d);
        var (k, rk) = Operand(bf16, b, h, nk, d);
        var (v, rv) = Operand(bf16, b, h, nk, d);
        var maskF = MakeMask(b, nk, maskKind);
        using var mask = maskF is null ? null : Upload(maskF, b, nk);
        using (q) using (k) using (v)
        {
            using var o = Poisoned(b, h, nq, d);
            using var lse = Poisoned(b, h, nq);
            Ops.Attention(q, k, v, mask, o, lse);
            var eo = Ref.Attention(rq, rk, rv, maskF is null ? null : TestSeed.ToDouble(maskF), b, h, nq, nk, d, out var eLse, out var oScale);
            Compare.AssertClose(Name("AttentionForward.o", q.Shape, k.Shape), o, eo, OutTol, oScale);
            Compare.AssertClose(Name("AttentionForward.lse", q.Shape, k.Shape), lse, eLse, LseTol, eLse.Select(x => Math.Abs(x) + 1).ToArray());
        }
    }

    protected void CheckBackward(int b, int h, int nq, int nk, int d, MaskKind maskKind, bool bf16 = false)
    {
        var (q, rq) = Operand(bf16, b, h, nq, d);
        var (k, rk) = Operand(bf16, b, h, nk, d);
        var (v, rv) = Operand(bf16, b, h, nk, d);
        var (dO, rdO) = Input(b, h, nq, d);
        var maskF = MakeMask(b, nk, maskKind);
        var rmask = maskF is null ? null : TestSeed.ToDouble(maskF);
        using var mask = maskF is null ? null : Upload(maskF, b, nk);
        using (q) using (k) using (v) using (dO)
        {
            var (o, lse) = Ops.Attention(q, k, v, mask);
            using (o) using (lse)
            {
                using var dq = Poisoned(b, h, nq, d);
                using var dk = Poisoned(b, h, nk, d);
                using var dv = Poisoned(b, h, nk, d);
                Ops.AttentionBackward(q, k, v, o, lse, dO, mask, dq, dk, dv);
                var (eq, ek, ev) = Ref.AttentionBackward(rq, rk, rv, rmask, rdO, b, h, nq, nk, d, out var s);
                Compare.AssertClose(Name("AttentionBackward.dq", q.Shape, k.Shape), dq, eq, GradTol, s.dq);
                Compare.AssertClose(Name("AttentionBackward.dk", q.Shape, k.Shape), dk, ek, GradTol, s.dk);
                Compare.AssertClose(Name("AttentionBackward.dv", q.Shape, k.Shape), dv, ev, GradTol, s.dv);
            }
        }
    }

    [Test]
    public void AttentionFullyMaskedRowsAreZero()
    {
        var (q, _) = Input(1, 2, 5, 8);
        var (k, _) = Input(1, 2, 3, 8);
        var (v, _) = Input(1, 2, 3, 8);
        var (dO, _) = Input(1, 2, 5, 8);
        using var mask = B.Zeros(1, 3);
        using (q) using (k) using (v) using (dO)
        {
            var (o, lse) = Ops.Attention(q, k, v, mask);
            using (o) using (lse)
            {
                Assert.That(o.ToArray(), Is.All.EqualTo(0f), "o of fully masked rows");
                Assert.That(lse.ToArray(), Is.All.EqualTo(float.PositiveInfinity), "lse of fully masked rows");
                var (dq, dk, dv) = Ops.AttentionBackward(q, k, v, o, lse, dO, mask);
                using (dq) using (dk) using (dv)
                    foreach (var (name, g) in new[] { ("dq", dq), ("dk", dk), ("dv", dv) })
                        Assert.That(g.ToArray(), Is.All.EqualTo(0f), name);
            }
        }
    }

    [Test]
    public void AttentionWithoutKeys()
    {
        var (q, _) = Input(2, 1, 3, 4);
        using (q)
        {
            using var k = B.Empty(2, 1, 0, 4);
            var (o, lse) = Ops.Attention(q, k, k);
            using (o) using (lse)
            {
                Assert.That(o.ToArray(), Is.All.EqualTo(0f));
                Assert.That(lse.ToArray(), Is.All.EqualTo(float.PositiveInfinity));
            }
        }
    }

    public static IEnumerable<TestCaseData> RotaryCases()
    {
        yield return new TestCaseData(new[] { 3, 2, 5, 16 }, 0).SetArgDisplayNames("3x2x5x16");
        yield return new TestCaseData(new[] { 1, 3, 7, 6 }, 3).SetArgDisplayNames("1x3x7x6 offset3");
        yield return new TestCaseData(new[] { 1, 1, 300, 8 }, 0).SetArgDisplayNames("1x1x300x8 (angles up to 299 rad)");
    }

    [TestCaseSource(nameof(RotaryCases))]
    public void RotaryForward(int[] shape, int offset)
    {
        var (x, rx) = Input(shape);
        using (x)
        {
            using var y = Poisoned(shape);
            Ops.Rotary(x, y, 10000f, offset);
            Compare.AssertClose(Name("RotaryForward", shape), y, Ref.Rotary(rx, shape[2], shape[3], 10000, offset, false), RotaryTol, PairScale(rx, shape[3]));
        }
    }

    [TestCaseSource(nameof(RotaryCases))]
    public void RotaryBackward(int[] shape, int offset)
    {
        var (dy, rdy) = Input(shape);
        using (dy)
        {
            using var dx = Poisoned(shape);
            Ops.RotaryBackward(dy, dx, 10000f, offset);
            Compare.AssertClose(Name("RotaryBackward", shape), dx, Ref.Rotary(rdy, shape[2], shape[3], 10000, offset, true), RotaryTol, PairScale(rdy, shape[3]));
        }
    }

    [Test]
    public void RotaryInPlaceAndOtherBase()
    {
        int[] shape = [2, 2, 9, 10];
        var (x, rx) = Input(shape);
        using (x)
        {
            Ops.Rotary(x, x, 500f);
            Compare.AssertClose(Name("Rotary in place base 500", shape), x, Ref.Rotary(rx, 9, 10, 500, 0, false), RotaryTol, PairScale(rx, 10));
        }
    }

    /// <summary>|x_i| + |x_(i±D/2)|: the two terms of each rotated element.</summary>
    static double[] PairScale(double[] x, int d)
    {
        var s = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int c = i % d, partner = c < d / 2 ? i + d / 2 : i - d / 2;
            s[i] = Math.Abs(x[i]) + Math.Abs(x[partner]);
        }
        return s;
    }

    /// <summary>Temporal attention: rotary on q and k along 5 frames, attention, and the chain rule back through rotary.</summary>
    [Test]
    public void TemporalAttentionWithRotary()
    {
        const int b = 3, h = 2, n = 5, d = 16;
        var (q, rq) = Input(b, h, n, d);
        var (k, rk) = Input(b, h, n, d);
        var (v, rv) = Input(b, h, n, d);
        var (dO, rdO) = Input(b, h, n, d);
        using (q) using (k) using (v) using (dO)
        {
            using var qr = Ops.Rotary(q);
            using var kr = Ops.Rotary(k);
            var (o, lse) = Ops.Attention(qr, kr, v);
            using (o) using (lse)
            {
                var rqr = Ref.Rotary(rq, n, d, 10000, 0, false);
                var rkr = Ref.Rotary(rk, n, d, 10000, 0, false);
                var eo = Ref.Attention(rqr, rkr, rv, null, b, h, n, n, d, out _, out var oScale);
                Compare.AssertClose(Name("TemporalAttention.o", q.Shape), o, eo, OutTol, oScale);

                var (dqr, dkr, dv) = Ops.AttentionBackward(qr, kr, v, o, lse, dO);
                using (dqr) using (dkr) using (dv)
                {
                    using var dq = Ops.RotaryBackward(dqr);
                    using var dk = Ops.RotaryBackward(dkr);
                    var (eq, ek, ev) = Ref.AttentionBackward(rqr, rkr, rv, null, rdO, b, h, n, n, d, out var s);
                    // rotation is orthogonal: the scales carry over through it as |a| + |b| pair sums
                    Compare.AssertClose(Name("TemporalAttention.dq", q.Shape), dq, Ref.Rotary(eq, n, d, 10000, 0, true), GradTol, PairScale(s.dq, d));
                    Compare.AssertClose(Name("TemporalAttention.dk", q.Shape), dk, Ref.Rotary(ek, n, d, 10000, 0, true), GradTol, PairScale(s.dk, d));
                    Compare.AssertClose(Name("TemporalAttention.dv", q.Shape), dv, ev, GradTol, s.dv);
                }
            }
        }
    }

    [Test]
    public void BadArgumentsThrow()
    {
        using var q = B.Zeros(2, 2, 5, 8);
        using var k = B.Zeros(2, 2, 7, 8);
        using var k4 = B.Zeros(2, 2, 7, 4);
        using var v6 = B.Zeros(2, 2, 6, 8);
        using var k3 = B.Zeros(2, 3, 7, 8);
        using var q3 = B.Zeros(2, 5, 8);
        using var mask = B.Zeros(2, 6);
        using var lseBad = B.Zeros(2, 2, 4);
        using var bf = Ops.ToBF16(q);
        using var odd = B.Zeros(1, 1, 3, 5);
        void Throws(string what, Action f, string contains)
        {
            var e = Assert.Throws<ArgumentException>(f, what)!;
            Assert.That(e.Message, Does.Contain(contains), what);
        }
        Throws("D mismatch", () => Ops.Attention(q, k4, k4), "head dim D of q [2,2,5,8] and k [2,2,7,4]");
        Throws("k/v mismatch", () => Ops.Attention(q, k, v6), "k [2,2,7,8] and v [2,2,6,8]");
        Throws("heads mismatch", () => Ops.Attention(q, k3, k3), "batch and heads");
        Throws("rank", () => Ops.Attention(q3, k, k), "Attention: expected q [B,H,Nq,D]");
        Throws("mask shape", () => Ops.Attention(q, k, k, mask), "mask [2,6] must be [B,Nk] = [2,7]");
        using var bfk = Ops.ToBF16(k);
        using var bfMask = Ops.ToBF16(mask);
        Throws("mixed dtypes", () => Ops.Attention(bf, k, k), "q, k and v must share a dtype, got q BF16, k F32, v F32");
        Throws("bf16 mask", () => Ops.Attention(bf, bfk, bfk, bfMask), "expected F32");
        Throws("bf16 dO", () => Ops.AttentionBackward(bf, bfk, bfk, q, lseBad, bf), "expected F32");
        Throws("lse shape", () => Ops.AttentionBackward(q, k, k, q, lseBad, q), "AttentionBackward: lse [2,2,4]");
        Throws("dO shape", () => Ops.AttentionBackward(q, k, k, q, lseBad, k), "AttentionBackward: dO [2,2,7,8]");
        Throws("odd D rotary", () => Ops.Rotary(odd), "Rotary: head dim D must be even, got x [1,1,3,5]");
        Throws("odd D rotary backward", () => Ops.RotaryBackward(odd), "RotaryBackward: head dim D must be even");
        Throws("rotary rank", () => Ops.Rotary(q3), "Rotary: expected x [B,H,N,D]");
    }

    /// <summary>D above the GPU kernels' 128 is refused on the GPU backends and works on the CPU one.</summary>
    [Test]
    public void HeadDimAboveGpuLimit()
    {
        if (Kind == BackendKind.Cpu) { CheckForward(1, 1, 6, 6, 160, MaskKind.None); CheckBackward(1, 1, 6, 6, 160, MaskKind.None); return; }
        using var q = B.Zeros(1, 1, 6, 160);
        var e = Assert.Throws<ArgumentException>(() => Ops.Attention(q, q, q))!;
        Assert.That(e.Message, Does.Contain("D = 160 exceeds 128"));
    }
}

[BackendFixtures(BackendKind.Cpu)]
public class AttentionLargeShapeTests_Cpu() : AttentionOpTests(BackendKind.Cpu)
{
    /// <summary>A model-sized head on the CPU backend (several query/key blocks per head, many work items).</summary>
    [Test]
    public void AttentionLargeSelf() { CheckForward(1, 8, 256, 256, 64, MaskKind.None); CheckBackward(1, 8, 256, 256, 64, MaskKind.None); }

    [Test]
    public void AttentionLargeCross() { CheckForward(1, 8, 256, 77, 64, MaskKind.SomeKeys); CheckBackward(1, 8, 256, 77, 64, MaskKind.SomeKeys); }

    /// <summary>The flash passes' online softmax across key blocks: 300 keys (three forward blocks, five backward ones,
    /// partial last blocks), 113 query rows (a partial query block), whole key blocks masked before the first attended
    /// key, and a batch with every key masked.</summary>
    [Test]
    public void AttentionKeyBlocksWithLeadingMaskedBlocks()
    {
        CheckForward(3, 2, 113, 300, 24, MaskKind.LeadingKeysMasked);
        CheckBackward(3, 2, 113, 300, 24, MaskKind.LeadingKeysMasked);
    }
}

[BackendFixtures(BackendKind.Cuda)]
public class AttentionLargeShapeTests_Cuda() : AttentionOpTests(BackendKind.Cuda)
{
    [Test]
    public void AttentionLargeSelf() { CheckForward(1, 8, 256, 256, 64, MaskKind.None); CheckBackward(1, 8, 256, 256, 64, MaskKind.None); }

    [Test]
    public void AttentionLargeCross() { CheckForward(1, 8, 256, 77, 64, MaskKind.SomeKeys); CheckBackward(1, 8, 256, 77, 64, MaskKind.SomeKeys); }
}

/// <summary>The float64 attention and rotary backward formulas equal finite differences of their forwards.</summary>
public class AttentionReferenceGradcheck
{
    Random rng = null!;
    [SetUp] public void Seed() => rng = TestSeed.NewRandom();
    double[] R(int n) => TestSeed.ToDouble(TestSeed.Uniform(rng, n, -2f, 2f));

    [TestCase(1, 2, 3, 3, 4, false)]
    [TestCase(2, 1, 3, 4, 2, true)]
    public void Attention(int b, int h, int nq, int nk, int d, bool masked)
    {
        var q = R(b * h * nq * d); var k = R(b * h * nk * d); var v = R(b * h * nk * d); var dO = R(b * h * nq * d);
        // batch 0: key 1 masked; batch 1 (when present): all keys masked
        double[]? mask = null;
        if (masked) { mask = new double[b * nk]; Array.Fill(mask, 1.0, 0, nk); mask[1] = 0; }
        var (dq, dk, dv) = Ref.AttentionBackward(q, k, v, mask, dO, b, h, nq, nk, d, out _);
        Gradcheck.Check("Attention.dq", x => Ref.Attention(x, k, v, mask, b, h, nq, nk, d, out _, out _), q, dO, dq);
        Gradcheck.Check("Attention.dk", x => Ref.Attention(q, x, v, mask, b, h, nq, nk, d, out _, out _), k, dO, dk);
        Gradcheck.Check("Attention.dv", x => Ref.Attention(q, k, x, mask, b, h, nq, nk, d, out _, out _), v, dO, dv);
    }

    [Test]
    public void Rotary()
    {
        const int n = 4, d = 6;
        var x = R(2 * n * d); var dy = R(2 * n * d);
        Gradcheck.Check("Rotary", v => Ref.Rotary(v, n, d, 10000, 2, false), x, dy, Ref.Rotary(dy, n, d, 10000, 2, true));
    }
}
