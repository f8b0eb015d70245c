using Mdm.Kernels;
using Mdm.Kernels.Gpu.Tuning;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>MatMul (all transpose forms, batched and broadcast, F32 and BF16) and Linear: forward and backward against float64.</summary>
[BackendFixtures]
public class MatmulOpTests(BackendKind kind) : KernelFixture(kind)
{
    /// <summary>f32 accumulation of n products: a few float eps per √n of Σ|terms|, plus a small floor.</summary>
    protected static Tolerance Accum(long n) => new(1e-6, 4 * 6e-8 * Math.Sqrt(Math.Max(n, 1)) + 1e-6);

    static readonly (bool ta, bool tb, string name)[] forms = [(false, false, "NN"), (false, true, "NT"), (true, false, "TN"), (true, true, "TT")];

    /// <summary>Stored shape of an operand whose op() is [rows, cols]; batch 0 means 2-D.</summary>
    protected static int[] Stored(int batch, int rows, int cols, bool trans)
    {
        int r = trans ? cols : rows, c = trans ? rows : cols;
        return batch == 0 ? [r, c] : [batch, r, c];
    }

    public static IEnumerable<TestCaseData> MatMulCases()
    {
        int[][] sizes = [[9, 13, 7], [113, 64, 17], [1, 1, 1], [33, 5, 19]];   // m, n, k
        foreach (var s in sizes)
            foreach (var (ta, tb, name) in forms)
                yield return new TestCaseData(0, 0, s[0], s[1], s[2], ta, tb).SetArgDisplayNames($"{s[0]}x{s[1]}x{s[2]} {name}");
    }

    public static IEnumerable<TestCaseData> BatchedCases()
    {
        foreach (var (ta, tb, name) in forms)
            yield return new TestCaseData(3, 3, 9, 7, 13, ta, tb).SetArgDisplayNames($"[3,9,13]x[3,13,7] {name}");
        foreach (var (ta, tb, name) in forms)
            yield return new TestCaseData(3, 0, 9, 7, 13, ta, tb).SetArgDisplayNames($"[3,9,13]x[13,7] {name}");
        yield return new TestCaseData(0, 3, 9, 7, 13, false, false).SetArgDisplayNames("[9,13]x[3,13,7] NN");
        yield return new TestCaseData(0, 3, 9, 7, 13, true, true).SetArgDisplayNames("[9,13]x[3,13,7] TT");
        yield return new TestCaseData(1, 3, 9, 7, 13, false, true).SetArgDisplayNames("[1,9,13]x[3,13,7] NT");
        yield return new TestCaseData(2, 2, 33, 40, 5, true, false).SetArgDisplayNames("[2,33,5]x[2,5,40] TN");
    }

    [TestCaseSource(nameof(MatMulCases))]
    [TestCaseSource(nameof(BatchedCases))]
    public void MatMulForwardBackward(int batchA, int batchB, int m, int n, int k, bool ta, bool tb) =>
        CheckMatMul(Stored(batchA, m, k, ta), ta, Stored(batchB, k, n, tb), tb);

    protected void CheckMatMul(int[] sa, bool ta, int[] sb, bool tb)
    {
        var (a, ra) = Input(sa);
        var (b, rb) = Input(sb);
        using (a) using (b)
        {
            var expected = Ref.MatMul(ra, sa, ta, rb, sb, tb, out var outShape, out var absSum);
            int k = ta ? sa[^2] : sa[^1];
            int batch = Math.Max(sa.Length == 3 ? sa[0] : 1, sb.Length == 3 ? sb[0] : 1);
            string form = $"{(ta ? "T" : "N")}{(tb ? "T" : "N")}";
            using (var c = Poisoned(outShape))
            {
                Ops.MatMul(a, b, ta, tb, c);
                Compare.AssertClose(Name("MatMul " + form, sa, sb), c, expected, Accum(k), absSum);
            }

            var (dc, rdc) = Input(outShape);
            using (dc)
            using (var da = Poisoned(sa))
            using (var db = Poisoned(sb))
            {
                Ops.MatMulBackward(dc, a, b, ta, tb, da, db);
                var (eda, edb, daAbs, dbAbs) = Ref.MatMulBackward(rdc, ra, sa, ta, rb, sb, tb);
                int m = outShape[^2], n = outShape[^1];
                Compare.AssertClose(Name("MatMulBackward.da " + form, sa, sb), da, eda, Accum((long)batch * n), daAbs);
                Compare.AssertClose(Name("MatMulBackward.db " + form, sa, sb), db, edb, Accum((long)batch * m), dbAbs);
            }
        }
    }

    public static IEnumerable<TestCaseData> LinearCases()
    {
        yield return new TestCaseData(new[] { 2, 113, 24 }, 40, true).SetArgDisplayNames("x[2,113,24] W[40,24] +b");
        yield return new TestCaseData(new[] { 9, 5 }, 7, true).SetArgDisplayNames("x[9,5] W[7,5] +b");
        yield return new TestCaseData(new[] { 9, 5 }, 7, false).SetArgDisplayNames("x[9,5] W[7,5]");
        yield return new TestCaseData(new[] { 5 }, 3, true).SetArgDisplayNames("x[5] W[3,5] +b");
    }

    [TestCaseSource(nameof(LinearCases))]
    public void LinearForwardBackward(int[] sx, int outF, bool hasBias)
    {
        int inF = sx[^1];
        var (x, rx) = Input(sx);
        var (w, rw) = Input(outF, inF);
        var (bias, rbias) = hasBias ? Input(outF) : (null, null);
        var sy = (int[])sx.Clone(); sy[^1] = outF;
        long rows = Ref.Numel(sx) / inF;
        using (x) using (w) using (bias)
        {
            using (var y = Poisoned(sy))
            {
                Ops.Linear(x, w, bias, y);
                var expected = Ref.Linear(rx, rw, outF, inF, rbias, out var absSum);
                Compare.AssertClose(Name("Linear", sx, [outF, inF]), y, expected, Accum(inF + 1), absSum);
            }
            var (dy, rdy) = Input(sy);
            using (dy)
            using (var dx = Poisoned(sx))
            using (var dw = Poisoned(outF, inF))
            using (var db = Poisoned(outF))
            {
                Ops.LinearBackward(dy, x, w, dx, dw, db);
                var e = Ref.LinearBackward(rdy, rx, rw, outF, inF);
                Compare.AssertClose(Name("LinearBackward.dx", sx, [outF, inF]), dx, e.dx, Accum(outF), e.dxAbs);
                Compare.AssertClose(Name("LinearBackward.dw", sx, [outF, inF]), dw, e.dw, Accum(rows), e.dwAbs);
                Compare.AssertClose(Name("LinearBackward.db", sx, [outF, inF]), db, e.db, Accum(rows), e.dbAbs);
            }
        }
    }

    [Test]
    public void LinearBackwardSkipsUnwantedOutputs()
    {
        var (x, rx) = Input(9, 5);
        var (w, rw) = Input(7, 5);
        var (dy, rdy) = Input(9, 7);
        using (x) using (w) using (dy)
        {
            var (dx, dw, db) = Ops.LinearBackward(dy, x, w, wantX: false, wantBias: false);
            using (dw)
            {
                Assert.That(dx, Is.Null);
                Assert.That(db, Is.Null);
                var e = Ref.LinearBackward(rdy, rx, rw, 7, 5);
                Compare.AssertClose(Name("LinearBackward.dw only", [9, 5], [7, 5]), dw!, e.dw, Accum(9), e.dwAbs);
            }
        }
    }

    // ---- bf16 -------------------------------------------------------------------------------------------------

    public static IEnumerable<TestCaseData> BF16Cases()
    {
        yield return new TestCaseData(0, 0, 113, 64, 96, false, false).SetArgDisplayNames("113x64x96 NN");
        yield return new TestCaseData(0, 0, 33, 5, 19, true, true).SetArgDisplayNames("33x5x19 TT");
        yield return new TestCaseData(3, 0, 9, 7, 13, false, true).SetArgDisplayNames("[3,9,13]x[7,13] NT");
        yield return new TestCaseData(0, 3, 9, 7, 13, true, false).SetArgDisplayNames("[13,9]x[3,13,7] TN");
    }

    /// <summary>
    /// BF16 storage, f32 accumulation. Forward: the FlashAttention rule against the float64 product of the exact
    /// (unrounded) inputs: max error ≤ 2 × that of a naive same-precision product (bf16-rounded inputs, f32 sums in plain
    /// order, computed here) + a small floor; and against the float64 product of the rounded inputs with an f32
    /// accumulation budget. Backward (F32 dc, rounded to bf16 by the op): against float64 on the rounded values.
    /// </summary>
    [TestCaseSource(nameof(BF16Cases))]
    public void MatMulBF16(int batchA, int batchB, int m, int n, int k, bool ta, bool tb)
    {
        int[] sa = Stored(batchA, m, k, ta), sb = Stored(batchB, k, n, tb);
        var fa = TestSeed.Uniform(Rng, Ref.Numel(sa));
        var fb = TestSeed.Uniform(Rng, Ref.Numel(sb));
        var (a, ra) = BF16Of(fa, sa);
        var (b, rb) = BF16Of(fb, sb);
        string form = $"{(ta ? "T" : "N")}{(tb ? "T" : "N")}";
        using (a) using (b)
        {
            var exact = Ref.MatMul(TestSeed.ToDouble(fa), sa, ta, TestSeed.ToDouble(fb), sb, tb, out var outShape, out _);
            var rounded = Ref.MatMul(ra, sa, ta, rb, sb, tb, out _, out var absSum);
            var naive = NaiveF32(ra, sa, ta, rb, sb, tb);
            using var c = Poisoned(outShape);
            Ops.MatMul(a, b, ta, tb, c);
            var got = c.ToArray();
            AssertWithinNaive(Name("MatMul bf16 " + form, sa, sb), got, exact, naive);
            Compare.AssertClose(Name("MatMul bf16 " + form + " vs rounded inputs", sa, sb), got, rounded, Accum(k), absSum, outShape);

            var fdc = TestSeed.Uniform(Rng, Ref.Numel(outShape));
            using var dc = B.FromArray(fdc, outShape);
            var rdc = Array.ConvertAll(fdc, v => (double)BFloat16.ToFloat(BFloat16.FromFloat(v)));
            AssertMatMulBackward("bf16 " + form, dc, rdc, a, ra, sa, ta, b, rb, sb, tb);
        }
    }

    /// <summary>MatMulBackward (F32 gradients) against float64 of the values the op multiplies (rdc: dc as the op
    /// rounds it).</summary>
    void AssertMatMulBackward(string tag, Tensor dc, double[] rdc, Tensor a, double[] ra, int[] sa, bool ta, Tensor b, double[] rb, int[] sb, bool tb)
    {
        using var da = Poisoned(sa);
        using var db = Poisoned(sb);
        Ops.MatMulBackward(dc, a, b, ta, tb, da, db);
        var (eda, edb, daAbs, dbAbs) = Ref.MatMulBackward(rdc, ra, sa, ta, rb, sb, tb);
        int batch = dc.Rank == 3 ? dc.Dim(0) : 1, m = dc.Dim(-2), n = dc.Dim(-1);
        Compare.AssertClose(Name("MatMulBackward.da " + tag, sa, sb), da, eda, Accum((long)batch * n), daAbs);
        Compare.AssertClose(Name("MatMulBackward.db " + tag, sa, sb), db, edb, Accum((long)batch * m), dbAbs);
    }

    /// <summary>The FlashAttention rule: max error against the exact float64 result ≤ 2 × that of the naive
    /// same-precision version + a floor.</summary>
    static void AssertWithinNaive(string what, float[] got, double[] exact, float[] naive)
    {
        double errKernel = 0, errNaive = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            errKernel = Math.Max(errKernel, Math.Abs(got[i] - exact[i]));
            errNaive = Math.Max(errNaive, Math.Abs(naive[i] - exact[i]));
        }
        TestContext.Out.WriteLine($"{what}: max error vs exact inputs {errKernel:G3}, naive same-precision {errNaive:G3}");
        Assert.That(errKernel, Is.LessThanOrEqualTo(2 * errNaive + 1e-5), $"{what}: error {errKernel:G3} vs naive {errNaive:G3}\n{TestSeed.Describe()}");
    }

    /// <summary>The naive same-precision product: bf16 values, f32 products summed in f32 in index order.</summary>
    static float[] NaiveF32(double[] a, int[] sa, bool ta, double[] b, int[] sb, bool tb)
    {
        var A = new Ref.MatOperand(sa, ta);
        var Bm = new Ref.MatOperand(sb, tb);
        int batch = Math.Max(A.Batch, Bm.Batch), m = A.Rows, k = A.Cols, n = Bm.Cols;
        var c = new float[batch * m * n];
        for (int bt = 0; bt < batch; bt++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    float s = 0f;
                    for (int p = 0; p < k; p++) s += (float)a[A.At(bt, i, p)] * (float)b[Bm.At(bt, p, j)];
                    c[(bt * m + i) * n + j] = s;
                }
        return c;
    }

    [Test]
    public void LinearBF16()
    {
        int[] sx = [2, 113, 24];
        int outF = 40, inF = 24, rows = 226;
        var (x, rx) = BF16Of(TestSeed.Uniform(Rng, Ref.Numel(sx)), sx);
        var (w, rw) = BF16Of(TestSeed.Uniform(Rng, outF * inF), [outF, inF]);
        var (bias, rbias) = Input(outF);
        using (x) using (w) using (bias)
        {
            using (var y = Poisoned(2, 113, outF))
            {
                Ops.Linear(x, w, bias, y);
                var expected = Ref.Linear(rx, rw, outF, inF, rbias, out var absSum);
                Compare.AssertClose(Name("Linear bf16", sx, [outF, inF]), y, expected, Accum(inF + 1), absSum);
            }
            var fdy = TestSeed.Uniform(Rng, rows * outF);
            using var dy = B.FromArray(fdy, 2, 113, outF);
            using var dx = Poisoned(sx);
            using var dw = Poisoned(outF, inF);
            using var db = Poisoned(outF);
            Ops.LinearBackward(dy, x, w, dx, dw, db);
            // dx, dw come from dy rounded to bf16; db sums dy as given (F32).
            var rdy = Array.ConvertAll(fdy, v => (double)BFloat16.ToFloat(BFloat16.FromFloat(v)));
            var e = Ref.LinearBackward(rdy, rx, rw, outF, inF);
            var e32 = Ref.LinearBackward(TestSeed.ToDouble(fdy), rx, rw, outF, inF);
            Compare.AssertClose(Name("LinearBackward.dx bf16", sx, [outF, inF]), dx, e.dx, Accum(outF), e.dxAbs);
            Compare.AssertClose(Name("LinearBackward.dw bf16", sx, [outF, inF]), dw, e.dw, Accum(rows), e.dwAbs);
            Compare.AssertClose(Name("LinearBackward.db bf16", sx, [outF, inF]), db, e32.db, Accum(rows), e32.dbAbs);
        }
    }

    // ---- bf16 output ------------------------------------------------------------------------------------------

    public static IEnumerable<TestCaseData> BF16OutputCases()
    {
        yield return new TestCaseData(0, 0, 113, 64, 96, false, false, DType.BF16).SetArgDisplayNames("113x64x96 NN bf16 in");
        yield return new TestCaseData(0, 0, 33, 5, 19, true, true, DType.BF16).SetArgDisplayNames("33x5x19 TT bf16 in");
        yield return new TestCaseData(3, 0, 9, 7, 13, false, true, DType.BF16).SetArgDisplayNames("[3,9,13]x[7,13] NT bf16 in");
        yield return new TestCaseData(0, 3, 9, 7, 13, true, false, DType.F32).SetArgDisplayNames("[13,9]x[3,13,7] TN f32 in");
    }

    /// <summary>
    /// A BF16 C: the f32 result rounded once to nearest even. Against the exact float64 product: at most 2 × the error
    /// of the naive same-precision product rounded to bf16 the same way, + a floor; against the float64 product of the
    /// values multiplied: the f32 accumulation budget plus half a bf16 ulp. The backward of a bf16-output product
    /// takes a BF16 gradient (as autocast hands it) and gives F32 gradients.
    /// </summary>
    [TestCaseSource(nameof(BF16OutputCases))]
    public void MatMulBF16Output(int batchA, int batchB, int m, int n, int k, bool ta, bool tb, DType inType)
    {
        int[] sa = Stored(batchA, m, k, ta), sb = Stored(batchB, k, n, tb);
        var fa = TestSeed.Uniform(Rng, Ref.Numel(sa));
        var fb = TestSeed.Uniform(Rng, Ref.Numel(sb));
        var (a, ra) = inType == DType.BF16 ? BF16Of(fa, sa) : (Upload(fa, sa), TestSeed.ToDouble(fa));
        var (b, rb) = inType == DType.BF16 ? BF16Of(fb, sb) : (Upload(fb, sb), TestSeed.ToDouble(fb));
        string form = $"{(ta ? "T" : "N")}{(tb ? "T" : "N")} {inType.Name()} in";
        using (a) using (b)
        {
            var exact = Ref.MatMul(TestSeed.ToDouble(fa), sa, ta, TestSeed.ToDouble(fb), sb, tb, out var outShape, out _);
            var rounded = Ref.MatMul(ra, sa, ta, rb, sb, tb, out _, out var absSum);
            var naive = Array.ConvertAll(NaiveF32(ra, sa, ta, rb, sb, tb), v => BFloat16.ToFloat(BFloat16.FromFloat(v)));
            using var c = PoisonedBF16(outShape);
            Ops.MatMul(a, b, ta, tb, c);
            var got = c.ToArray();
            AssertWithinNaive(Name("MatMul bf16 out " + form, sa, sb), got, exact, naive);
            Compare.AssertClose(Name("MatMul bf16 out " + form + " vs float64", sa, sb), got, rounded, new Tolerance(1e-6, 1),
                BF16OutputBudget(rounded, absSum, k), outShape);

            var fdc = TestSeed.Uniform(Rng, Ref.Numel(outShape));
            var (dc, rdc) = inType == DType.BF16 ? BF16Of(fdc, outShape) : (Upload(fdc, outShape), TestSeed.ToDouble(fdc));
            using (dc) AssertMatMulBackward("after bf16 out " + form, dc, rdc, a, ra, sa, ta, b, rb, sb, tb);
        }
    }

    /// <summary>Linear with outDType BF16 (bias added in f32 before the rounding), then its backward from a BF16 dy.</summary>
    [Test]
    public void LinearBF16Output()
    {
        int[] sx = [2, 37, 24];
        int outF = 40, inF = 24, rows = 74;
        var fx = TestSeed.Uniform(Rng, Ref.Numel(sx));
        var (x, rx) = BF16Of(fx, sx);
        var (w, rw) = BF16Input(outF, inF);
        var (bias, rbias) = Input(outF);
        using (x) using (w) using (bias)
        {
            using (var y = Ops.Linear(x, w, bias, outDType: DType.BF16))
            {
                Assert.That(y.DType, Is.EqualTo(DType.BF16), "Linear(outDType: BF16) output type");
                var expected = Ref.Linear(rx, rw, outF, inF, rbias, out var absSum);
                Compare.AssertClose(Name("Linear bf16 out", sx, [outF, inF]), y.ToArray(), expected, new Tolerance(1e-6, 1),
                    BF16OutputBudget(expected, absSum, inF + 1), [2, 37, outF]);
            }
            var (dy, rdy) = BF16Input(2, 37, outF);
            using (dy)
            {
                var (dx, dw, db) = Ops.LinearBackward(dy, x, w);
                using (dx) using (dw) using (db)
                {
                    var e = Ref.LinearBackward(rdy, rx, rw, outF, inF);
                    Assert.That(new[] { dx!.DType, dw!.DType, db!.DType }, Is.All.EqualTo(DType.F32), "gradients stay F32");
                    Compare.AssertClose(Name("LinearBackward.dx after bf16 out", sx, [outF, inF]), dx, e.dx, Accum(outF), e.dxAbs);
                    Compare.AssertClose(Name("LinearBackward.dw after bf16 out", sx, [outF, inF]), dw, e.dw, Accum(rows), e.dwAbs);
                    Compare.AssertClose(Name("LinearBackward.db after bf16 out", sx, [outF, inF]), db, e.db, Accum(rows), e.dbAbs);
                }
            }
        }
    }

    /// <summary>Per element: the f32 accumulation budget of <see cref="Accum"/> plus half a bf16 ulp (2⁻⁸ relative).</summary>
    static double[] BF16OutputBudget(double[] reference, double[] absSum, long terms)
    {
        var t = Accum(terms);
        return [.. reference.Select((r, i) => t.Rtol * absSum[i] + Math.Pow(2, -8) * Math.Abs(r))];
    }

    // ---- edge sizes and bad arguments -------------------------------------------------------------------------

    [Test]
    public void EmptyInnerDimensionGivesZerosAndBias()
    {
        using var a = B.Empty(3, 0);
        using var b = B.Empty(0, 4);
        using var c = Poisoned(3, 4);
        Ops.MatMul(a, b, c: c);
        Compare.AssertClose(Name("MatMul k=0", [3, 0], [0, 4]), c, new double[12], Tolerance.F32Exact);
        var (bias, rbias) = Input(4);
        using (bias)
        using (var y = Poisoned(3, 4))
        {
            Ops.Linear(a, b.Reshape(4, 0), bias, y);
            Compare.AssertClose(Name("Linear in=0", [3, 0], [4, 0]), y, Enumerable.Range(0, 12).Select(i => rbias[i % 4]).ToArray(), Tolerance.F32Exact);
        }
    }

    [Test]
    public void BadArgumentsThrowNamingOpAndShapes()
    {
        using var a23 = B.Zeros(2, 3);
        using var a45 = B.Zeros(4, 5);
        using var a34 = B.Zeros(3, 4);
        using var b234 = B.Zeros(2, 3, 4);
        using var b345 = B.Zeros(3, 4, 5);
        using var v3 = B.Zeros(3);
        using var r4 = B.Zeros(1, 2, 3, 4);
        using var h34 = B.Empty(DType.BF16, 3, 4);
        void Throws(string op, Action f, params string[] parts)
        {
            var ex = Assert.Throws<ArgumentException>(f)!;
            Assert.That(ex.Message, Does.StartWith(op + ":"));
            foreach (var p in parts) Assert.That(ex.Message, Does.Contain(p));
        }
        Throws("MatMul", () => Ops.MatMul(a23, a45), "inner", "[2,3]", "[4,5]");
        Throws("MatMul", () => Ops.MatMul(a23, a45, transB: true), "inner", "[2,3]", "[4,5]");
        Throws("MatMul", () => Ops.MatMul(b234, b345), "batch", "[2,3,4]", "[3,4,5]");
        Throws("MatMul", () => Ops.MatMul(a23, h34), "BF16", "[2,3]", "[3,4]");
        Throws("MatMul", () => Ops.MatMul(v3, a34), "2-D or 3-D", "[3]");
        Throws("MatMul", () => Ops.MatMul(r4, a45), "2-D or 3-D", "[1,2,3,4]");
        using (var wrongOut = B.Zeros(2, 5)) Throws("MatMul", () => Ops.MatMul(a23, a34, c: wrongOut), "[2,5]", "[2,4]");
        using (var f32Out = B.Zeros(2, 4)) Throws("MatMul", () => Ops.MatMul(a23, a34, c: f32Out, outDType: DType.BF16), "F32", "BF16");
        using (var dcBad = B.Zeros(2, 5)) Throws("MatMulBackward", () => Ops.MatMulBackward(dcBad, a23, a34), "[2,5]", "[2,3]", "[3,4]");

        using var x = B.Zeros(9, 5);
        using var w75 = B.Zeros(7, 5);
        using var w74 = B.Zeros(7, 4);
        using var b7 = B.Zeros(7);
        using var b6 = B.Zeros(6);
        using var hx = B.Empty(DType.BF16, 9, 5);
        Throws("Linear", () => Ops.Linear(x, w74, b7), "[9,5]", "[7,4]");
        Throws("Linear", () => Ops.Linear(x, w75, b6), "[7,5]", "[6]");
        Throws("Linear", () => Ops.Linear(x, v3), "2-D", "[3]");
        Throws("Linear", () => Ops.Linear(hx, w75, b7), "BF16", "F32", "[9,5]", "[7,5]");
        using (var dyBad = B.Zeros(9, 6)) Throws("LinearBackward", () => Ops.LinearBackward(dyBad, x, w75), "[9,6]", "[9,5]", "[7,5]");

        using var other = new Mdm.Kernels.Cpu.CpuBackend();
        using var foreign = other.Zeros(3, 4);
        Throws("MatMul", () => Ops.MatMul(a23, foreign), "different devices", "[2,3]", "[3,4]");
    }
}

[BackendFixtures(BackendKind.Cpu)]
public class MatmulLargeShapeTests_Cpu() : MatmulOpTests(BackendKind.Cpu)
{
    /// <summary>A size where the CPU GEMM's row split across cores matters.</summary>
    [TestCase(false, false)]
    [TestCase(true, true)]
    public void MatMul256(bool ta, bool tb) => CheckMatMul(Stored(0, 256, 256, ta), ta, Stored(0, 256, 256, tb), tb);

    [Test]
    public void BatchedBroadcast256() => CheckMatMul([4, 64, 256], false, [128, 256], true);
}
[BackendFixtures(BackendKind.Cuda)]
public class MatmulTensorCoreTests_Cuda() : MatmulOpTests(BackendKind.Cuda)
{
    /// <summary>Shapes the tensor-core GEMM takes (every stored row a multiple of 8 values) but that are not whole
    /// tiles: M, N off the 128 tile, K off the 32 slice, all four transpose forms, batched, broadcast and summed.</summary>
    public static IEnumerable<TestCaseData> TensorCoreCases()
    {
        foreach (var (ta, tb, name) in new[] { (false, false, "NN"), (false, true, "NT"), (true, false, "TN"), (true, true, "TT") })
        {
            yield return new TestCaseData(0, 0, 200, 136, 72, ta, tb).SetArgDisplayNames($"200x136x72 {name}");
            yield return new TestCaseData(3, 0, 136, 264, 40, ta, tb).SetArgDisplayNames($"[3,136,40]x[40,264] {name}");
        }
        yield return new TestCaseData(0, 2, 8, 384, 264, false, false).SetArgDisplayNames("[8,264]x[2,264,384] NN");
        yield return new TestCaseData(2, 2, 256, 128, 512, false, true).SetArgDisplayNames("[2,256,512]x[2,128,512] NT");
    }

    /// <summary>The mma.sync tile and warp layouts: 128×128×64 with 4 and 8 warps, the short-K 128×128×32 and 64×128×32.</summary>
    static readonly string[] TileVariants = [GemmVariant.Wide, GemmVariant.Narrow, GemmVariant.BK32, GemmVariant.M64BK32];

    /// <summary>The bf16 checks of <see cref="MatmulOpTests.MatMulBF16"/> on shapes routed to the tensor cores; fails if
    /// they were not (the SIMT kernel would pass the same checks).</summary>
    [TestCaseSource(nameof(TensorCoreCases))]
    public void MatMulBF16OnTensorCores(int batchA, int batchB, int m, int n, int k, bool ta, bool tb)
    {
        var gpu = (Mdm.Kernels.Gpu.IlgpuBackend)B;
        foreach (var variant in TileVariants)
        {
            gpu.GemmAlgorithm = variant;
            try
            {
                long before = gpu.TensorCoreGemms;
                MatMulBF16(batchA, batchB, m, n, k, ta, tb);
                Assert.That(gpu.TensorCoreGemms - before, Is.GreaterThanOrEqualTo(3),
                    $"{variant}: forward, da and db should all have run on tensor cores ({gpu.TensorCoreStatus})");
            }
            finally { gpu.GemmAlgorithm = null; }
        }
    }

    /// <summary><see cref="MatmulOpTests.MatMulBF16Output"/> on the tensor cores, every tile layout: C rows aligned
    /// (16-byte stores) and not (N = 21: element stores only).</summary>
    [TestCase(0, 0, 200, 136, 72, false, false)]
    [TestCase(3, 0, 136, 264, 40, true, true)]
    [TestCase(0, 0, 37, 21, 24, false, true)]
    public void MatMulBF16OutputOnTensorCores(int batchA, int batchB, int m, int n, int k, bool ta, bool tb)
    {
        var gpu = (Mdm.Kernels.Gpu.IlgpuBackend)B;
        foreach (var variant in TileVariants)
        {
            gpu.GemmAlgorithm = variant;
            try
            {
                long before = gpu.TensorCoreGemms;
                MatMulBF16Output(batchA, batchB, m, n, k, ta, tb, DType.BF16);
                Assert.That(gpu.TensorCoreGemms - before, Is.GreaterThanOrEqualTo(3),
                    $"{variant}: forward, da and db should all have run on tensor cores ({gpu.TensorCoreStatus})");
            }
            finally { gpu.GemmAlgorithm = null; }
        }
    }

    /// <summary>The split-K variant on weight-gradient shapes (few output tiles, long K): the forward is cut into
    /// pieces that add into C; the backward products have many tiles and are not.</summary>
    [TestCase(64, 64, 1024, true, false)]
    [TestCase(136, 72, 2048, false, false)]
    public void MatMulBF16SplitK(int m, int n, int k, bool ta, bool tb)
    {
        var gpu = (Mdm.Kernels.Gpu.IlgpuBackend)B;
        gpu.GemmAlgorithm = GemmVariant.SplitK;
        try
        {
            long before = gpu.TensorCoreGemms;
            MatMulBF16(0, 0, m, n, k, ta, tb);
            Assert.That(gpu.TensorCoreGemms - before, Is.GreaterThanOrEqualTo(3), $"all three products on tensor cores ({gpu.TensorCoreStatus})");
        }
        finally { gpu.GemmAlgorithm = null; }
    }
}

/// <summary>The float64 MatMul and Linear backwards equal finite differences of their forwards.</summary>
public class MatmulReferenceGradcheck
{
    Random rng = null!;
    [SetUp] public void Seed() => rng = TestSeed.NewRandom();

    double[] R(long n) => TestSeed.ToDouble(TestSeed.Uniform(rng, n, -2f, 2f));

    [TestCase(new[] { 3, 4 }, false, new[] { 4, 5 }, false)]
    [TestCase(new[] { 3, 4 }, false, new[] { 5, 4 }, true)]
    [TestCase(new[] { 4, 3 }, true, new[] { 4, 5 }, false)]
    [TestCase(new[] { 4, 3 }, true, new[] { 5, 4 }, true)]
    [TestCase(new[] { 2, 3, 4 }, false, new[] { 2, 4, 5 }, false)]
    [TestCase(new[] { 2, 4, 3 }, true, new[] { 5, 4 }, true)]
    [TestCase(new[] { 3, 4 }, false, new[] { 2, 4, 5 }, false)]
    [TestCase(new[] { 1, 4, 3 }, true, new[] { 2, 5, 4 }, true)]
    public void MatMul(int[] sa, bool ta, int[] sb, bool tb)
    {
        var a = R(Ref.Numel(sa)); var b = R(Ref.Numel(sb));
        Ref.MatMul(a, sa, ta, b, sb, tb, out var outShape, out _);
        var dc = R(Ref.Numel(outShape));
        var (da, db, _, _) = Ref.MatMulBackward(dc, a, sa, ta, b, sb, tb);
        Gradcheck.Check("MatMul.da", v => Ref.MatMul(v, sa, ta, b, sb, tb, out _, out _), a, dc, da);
        Gradcheck.Check("MatMul.db", v => Ref.MatMul(a, sa, ta, v, sb, tb, out _, out _), b, dc, db);
    }

    [TestCase(6, 4, 3, true)]
    [TestCase(5, 3, 2, false)]
    public void Linear(int rows, int inF, int outF, bool hasBias)
    {
        var x = R(rows * inF); var w = R(outF * inF); var bias = hasBias ? R(outF) : null;
        var dy = R(rows * outF);
        var g = Ref.LinearBackward(dy, x, w, outF, inF);
        Gradcheck.Check("Linear.dx", v => Ref.Linear(v, w, outF, inF, bias, out _), x, dy, g.dx);
        Gradcheck.Check("Linear.dw", v => Ref.Linear(x, v, outF, inF, bias, out _), w, dy, g.dw);
        if (bias is not null) Gradcheck.Check("Linear.db", v => Ref.Linear(x, w, outF, inF, v, out _), bias, dy, g.db);
    }
}
