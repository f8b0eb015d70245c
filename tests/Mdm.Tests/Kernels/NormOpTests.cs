using System.Diagnostics;
using Mdm.Kernels;
using Mdm.Kernels.Cpu;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>
/// GroupNorm, fused GroupNorm + FiLM + SiLU (and GroupNorm + SiLU) and LayerNorm: forward (y, mean, rstd) and every
/// backward output against float64.
/// </summary>
[BackendFixtures]
public class NormOpTests(BackendKind kind) : KernelFixture(kind)
{
    const float Eps = 1e-5f;

    public static IEnumerable<TestCaseData> GroupNormCases()
    {
        yield return new TestCaseData(new[] { 2, 64, 9, 9 }, 32).SetArgDisplayNames("2x64x9x9 G32");
        yield return new TestCaseData(new[] { 3, 32, 5, 7 }, 32).SetArgDisplayNames("3x32x5x7 G32");
        yield return new TestCaseData(new[] { 2, 96, 4, 4 }, 32).SetArgDisplayNames("2x96x4x4 G32");
        yield return new TestCaseData(new[] { 1, 8, 113 }, 4).SetArgDisplayNames("1x8x113 G4");
        yield return new TestCaseData(new[] { 2, 16, 24, 40 }, 8).SetArgDisplayNames("2x16x24x40 G8");   // channels longer than a CUDA group: the per-channel sweep
    }

    public static IEnumerable<TestCaseData> FusedCases()
    {
        foreach (bool film in new[] { true, false })
        {
            string mode = film ? "film" : "nofilm";
            yield return new TestCaseData(new[] { 2, 64, 9, 9 }, 32, film).SetArgDisplayNames($"2x64x9x9 G32 {mode}");
            yield return new TestCaseData(new[] { 3, 32, 5, 7 }, 32, film).SetArgDisplayNames($"3x32x5x7 G32 {mode}");
            yield return new TestCaseData(new[] { 1, 8, 113 }, 4, film).SetArgDisplayNames($"1x8x113 G4 {mode}");
            yield return new TestCaseData(new[] { 2, 16, 24, 40 }, 8, film).SetArgDisplayNames($"2x16x24x40 G8 {mode}");
        }
    }

    public static IEnumerable<TestCaseData> LayerNormCases()
    {
        yield return new TestCaseData((object)new[] { 113, 64 }).SetArgDisplayNames("113x64");
        yield return new TestCaseData((object)new[] { 2, 9, 48 }).SetArgDisplayNames("2x9x48");
        yield return new TestCaseData((object)new[] { 4, 7 }).SetArgDisplayNames("4x7");
    }

    /// <summary>Budget for a float result built from sums of n terms, against a Σ|terms| scale.</summary>
    static Tolerance Accum(long n) => new(1e-6, 2e-6 + 4 * 6e-8 * Math.Sqrt(n));

    static float[] ToFloat(double[] v) => Array.ConvertAll(v, e => (float)e);

    /// <summary>Mean |x| over each contiguous row of length m: the scale of a float mean's error.</summary>
    static double[] RowAbsMean(double[] x, int m)
    {
        var r = new double[x.Length / m];
        for (int i = 0; i < x.Length; i++) r[i / m] += Math.Abs(x[i]) / m;
        return r;
    }

    // ---- GroupNorm / fused ------------------------------------------------------------------------------------------

    [TestCaseSource(nameof(GroupNormCases))]
    public void GroupNormForward(int[] shape, int groups) => CheckForward(shape, groups, film: false, silu: false);

    [TestCaseSource(nameof(GroupNormCases))]
    public void GroupNormBackward(int[] shape, int groups) => CheckBackward(shape, groups, film: false, silu: false);

    [TestCaseSource(nameof(FusedCases))]
    public void GroupNormFilmSiluForward(int[] shape, int groups, bool film) => CheckForward(shape, groups, film, silu: true);

    [TestCaseSource(nameof(FusedCases))]
    public void GroupNormFilmSiluBackward(int[] shape, int groups, bool film) => CheckBackward(shape, groups, film, silu: true);

    /// <summary>A BF16 x (autocast's conv output, read as it is): forward and backward against float64 of its values.</summary>
    [TestCaseSource(nameof(GroupNormCases))]
    public void GroupNormForwardBF16Input(int[] shape, int groups) => CheckForward(shape, groups, film: false, silu: false, bf16X: true);

    [TestCaseSource(nameof(GroupNormCases))]
    public void GroupNormBackwardBF16Input(int[] shape, int groups) => CheckBackward(shape, groups, film: false, silu: false, bf16X: true);

    [TestCaseSource(nameof(FusedCases))]
    public void GroupNormFilmSiluForwardBF16Input(int[] shape, int groups, bool film) => CheckForward(shape, groups, film, silu: true, bf16X: true);

    [TestCaseSource(nameof(FusedCases))]
    public void GroupNormFilmSiluBackwardBF16Input(int[] shape, int groups, bool film) => CheckBackward(shape, groups, film, silu: true, bf16X: true);

    sealed class GroupNormInputs : IDisposable
    {
        public required Tensor X, Gamma, Beta;
        public Tensor? A, B;
        public required double[] Rx, Rgamma, Rbeta;
        public double[]? Ra, Rb;
        public void Dispose() { X.Dispose(); Gamma.Dispose(); Beta.Dispose(); A?.Dispose(); B?.Dispose(); }
    }

    GroupNormInputs MakeInputs(int[] shape, bool film, float offset = 0, bool bf16X = false)
    {
        int n = shape[0], c = shape[1];
        var (x, rx) = bf16X ? BF16Input(shape) : Input(shape);
        if (offset != 0)
        {
            // Data far from 0 (x + offset, exactly representable): one-pass statistics must not cancel.
            for (int i = 0; i < rx.Length; i++) rx[i] = (float)(rx[i] + offset);
            x.Dispose();
            if (bf16X) (x, rx) = BF16Of(ToFloat(rx), shape);
            else x = Upload(ToFloat(rx), shape);
        }
        var (gamma, rg) = Input(c);
        var (beta, rb) = Input(c);
        var inputs = new GroupNormInputs { X = x, Gamma = gamma, Beta = beta, Rx = rx, Rgamma = rg, Rbeta = rb };
        if (film)
        {
            (inputs.A, inputs.Ra) = Input(n, c);
            (inputs.B, inputs.Rb) = Input(n, c);
        }
        return inputs;
    }

    static string OpName(bool film, bool silu) => !silu ? "GroupNorm" : film ? "GroupNormFilmSilu" : "GroupNormSilu";

    (Tensor Y, Tensor Mean, Tensor Rstd) RunForward(GroupNormInputs p, int groups, bool silu, Tensor? y = null, Tensor? mean = null, Tensor? rstd = null) =>
        !silu ? Ops.GroupNorm(p.X, groups, p.Gamma, p.Beta, Eps, y, mean, rstd)
        : p.A is null ? Ops.GroupNormSilu(p.X, groups, p.Gamma, p.Beta, Eps, y, mean, rstd)
        : Ops.GroupNormFilmSilu(p.X, groups, p.Gamma, p.Beta, p.A, p.B, Eps, y, mean, rstd);

    /// <param name="bf16X">x is BF16 (autocast's conv output): the reference is float64 of its values, the budget the same</param>
    protected void CheckForward(int[] shape, int groups, bool film, bool silu, float offset = 0, bool bf16X = false)
    {
        int n = shape[0];
        using var p = MakeInputs(shape, film, offset, bf16X);
        using var y = Poisoned(shape);
        using var mean = Poisoned(n, groups);
        using var rstd = Poisoned(n, groups);
        RunForward(p, groups, silu, y, mean, rstd);
        var expected = Ref.GroupNorm(p.Rx, shape, groups, p.Rgamma, p.Rbeta, p.Ra, p.Rb, silu, Eps, out var rMean, out var rRstd, out var yScale);
        int m = (int)(Shape.Numel(shape) / (n * groups));
        if (offset != 0)
        {
            // x − mean loses the low bits of |x|, so the error scales with |x|·rstd·|gamma·(1 + a)|, not with |y|.
            int c = shape[1], s = m * groups / c;
            for (int i = 0; i < yScale.Length; i++)
            {
                int nn = i / (c * s), ch = i / s % c;
                yScale[i] += Math.Abs(p.Rx[i]) * rRstd[nn * groups + ch / (c / groups)] * Math.Abs(p.Rgamma[ch] * (p.Ra is null ? 1 : 1 + p.Ra[nn * c + ch]));
            }
        }
        string op = OpName(film, silu);
        Compare.AssertClose(Name(op + "Forward.y", shape) + $" G{groups}", y, expected, Accum(m), yScale);
        Compare.AssertClose(Name(op + "Forward.mean", shape), mean, rMean, Accum(m), RowAbsMean(p.Rx, m));
        Compare.AssertClose(Name(op + "Forward.rstd", shape), rstd, rRstd, Accum(m));
    }

    void CheckBackward(int[] shape, int groups, bool film, bool silu, bool bf16X = false)
    {
        int n = shape[0], c = shape[1];
        using var p = MakeInputs(shape, film, bf16X: bf16X);
        var (dy, rdy) = Input(shape);
        using (dy)
        {
            // The saved statistics come from the float64 reference (rounded to float), so the backward is tested on its own.
            Ref.GroupNorm(p.Rx, shape, groups, p.Rgamma, p.Rbeta, p.Ra, p.Rb, silu, Eps, out var rMean, out var rRstd, out _);
            using var mean = Upload(ToFloat(rMean), n, groups);
            using var rstd = Upload(ToFloat(rRstd), n, groups);
            using var dx = Poisoned(shape);
            using var dgamma = Poisoned(c);
            using var dbeta = Poisoned(c);
            using var da = film ? Poisoned(n, c) : null;
            using var db = film ? Poisoned(n, c) : null;
            if (!silu) Ops.GroupNormBackward(dy, p.X, mean, rstd, p.Gamma, groups, dx, dgamma, dbeta);
            else if (!film) Ops.GroupNormSiluBackward(dy, p.X, mean, rstd, p.Gamma, p.Beta, groups, dx, dgamma, dbeta);
            else
            {
                var r = Ops.GroupNormFilmSiluBackward(dy, p.X, mean, rstd, p.Gamma, p.Beta, p.A, p.B, groups, dx, dgamma, dbeta, da, db);
                Assert.That(r.Da, Is.SameAs(da));
                Assert.That(r.Db, Is.SameAs(db));
            }
            var e = Ref.GroupNormBackward(rdy, p.Rx, shape, groups, p.Rgamma, p.Rbeta, p.Ra, p.Rb, silu, Eps);
            long s = Shape.Numel(shape) / ((long)n * c), m = s * (c / groups);
            string op = OpName(film, silu) + "Backward";
            Compare.AssertClose(Name(op + ".dx", shape) + $" G{groups}", dx, e.Dx, Accum(m), e.DxScale);
            Compare.AssertClose(Name(op + ".dgamma", shape), dgamma, e.Dgamma, Accum(n * s), e.DgammaScale);
            Compare.AssertClose(Name(op + ".dbeta", shape), dbeta, e.Dbeta, Accum(n * s), e.DbetaScale);
            if (film)
            {
                Compare.AssertClose(Name(op + ".da", shape), da!, e.Da!, Accum(s), e.DaScale);
                Compare.AssertClose(Name(op + ".db", shape), db!, e.Db!, Accum(s), e.DbScale);
            }
        }
    }

    /// <summary>Two backward runs on the same inputs give bit-identical results (no atomics, fixed summation order).</summary>
    [Test]
    public void GroupNormFilmSiluBackwardIsDeterministic()
    {
        int[] shape = [3, 8, 5, 7];
        using var p = MakeInputs(shape, film: true);
        var (dy, _) = Input(shape);
        using (dy)
        {
            var (y, mean, rstd) = RunForward(p, 4, silu: true);
            using (y) using (mean) using (rstd)
            {
                var first = Ops.GroupNormFilmSiluBackward(dy, p.X, mean, rstd, p.Gamma, p.Beta, p.A, p.B, 4);
                var second = Ops.GroupNormFilmSiluBackward(dy, p.X, mean, rstd, p.Gamma, p.Beta, p.A, p.B, 4);
                using (first.Dx) using (first.Dgamma) using (first.Dbeta) using (first.Da) using (first.Db)
                using (second.Dx) using (second.Dgamma) using (second.Dbeta) using (second.Da) using (second.Db)
                {
                    Assert.That(second.Dx.ToArray(), Is.EqualTo(first.Dx.ToArray()), "dx");
                    Assert.That(second.Dgamma.ToArray(), Is.EqualTo(first.Dgamma.ToArray()), "dgamma");
                    Assert.That(second.Dbeta.ToArray(), Is.EqualTo(first.Dbeta.ToArray()), "dbeta");
                    Assert.That(second.Da!.ToArray(), Is.EqualTo(first.Da!.ToArray()), "da");
                    Assert.That(second.Db!.ToArray(), Is.EqualTo(first.Db!.ToArray()), "db");
                }
            }
        }
    }

    /// <summary>A model-size fused norm ([16, 128, 32, 32], G = 32, with FiLM): forward and backward against float64, timed.</summary>
    protected void CheckModelSizeFused()
    {
        int[] shape = [16, 128, 32, 32];
        var sw = Stopwatch.StartNew();
        CheckForward(shape, 32, film: true, silu: true);
        CheckBackward(shape, 32, film: true, silu: true);
        TestContext.Out.WriteLine($"model-size fused GroupNorm check (incl. float64 reference) took {sw.ElapsedMilliseconds} ms");
        using var p = MakeInputs(shape, film: true);
        var (dy, _) = Input(shape);
        using (dy)
        {
            for (int rep = 0; rep < 3; rep++)
            {
                sw.Restart();
                var (y, mean, rstd) = RunForward(p, 32, silu: true);
                B.Synchronize();
                long fwd = sw.ElapsedTicks;
                sw.Restart();
                var g = Ops.GroupNormFilmSiluBackward(dy, p.X, mean, rstd, p.Gamma, p.Beta, p.A, p.B, 32);
                B.Synchronize();
                TestContext.Out.WriteLine($"  run {rep}: forward {fwd * 1000.0 / Stopwatch.Frequency:F2} ms, backward {sw.ElapsedTicks * 1000.0 / Stopwatch.Frequency:F2} ms");
                y.Dispose(); mean.Dispose(); rstd.Dispose(); g.Dx.Dispose(); g.Dgamma.Dispose(); g.Dbeta.Dispose(); g.Da?.Dispose(); g.Db?.Dispose();
            }
        }
    }

    // ---- LayerNorm --------------------------------------------------------------------------------------------------

    [TestCaseSource(nameof(LayerNormCases))]
    public void LayerNormForward(int[] shape)
    {
        int d = shape[^1];
        var (x, rx) = Input(shape);
        var (gamma, rg) = Input(d);
        var (beta, rb) = Input(d);
        using (x) using (gamma) using (beta)
        {
            var statShape = shape[..^1];
            using var y = Poisoned(shape);
            using var mean = Poisoned(statShape);
            using var rstd = Poisoned(statShape);
            Ops.LayerNorm(x, gamma, beta, Eps, y, mean, rstd);
            var expected = Ref.LayerNorm(rx, d, rg, rb, Eps, out var rMean, out var rRstd, out var yScale);
            Compare.AssertClose(Name("LayerNormForward.y", shape), y, expected, Accum(d), yScale);
            Compare.AssertClose(Name("LayerNormForward.mean", shape), mean, rMean, Accum(d), RowAbsMean(rx, d));
            Compare.AssertClose(Name("LayerNormForward.rstd", shape), rstd, rRstd, Accum(d));
        }
    }

    [TestCaseSource(nameof(LayerNormCases))]
    public void LayerNormBackward(int[] shape)
    {
        int d = shape[^1];
        long rows = Shape.Numel(shape) / d;
        var (x, rx) = Input(shape);
        var (gamma, rg) = Input(d);
        var (dy, rdy) = Input(shape);
        using (x) using (gamma) using (dy)
        {
            Ref.LayerNorm(rx, d, rg, new double[d], Eps, out var rMean, out var rRstd, out _);
            using var mean = Upload(ToFloat(rMean), shape[..^1]);
            using var rstd = Upload(ToFloat(rRstd), shape[..^1]);
            using var dx = Poisoned(shape);
            using var dgamma = Poisoned(d);
            using var dbeta = Poisoned(d);
            Ops.LayerNormBackward(dy, x, mean, rstd, gamma, dx, dgamma, dbeta);
            var e = Ref.LayerNormBackward(rdy, rx, d, rg, Eps);
            Compare.AssertClose(Name("LayerNormBackward.dx", shape), dx, e.Dx, Accum(d), e.DxScale);
            Compare.AssertClose(Name("LayerNormBackward.dgamma", shape), dgamma, e.Dgamma, Accum(rows), e.DgammaScale);
            Compare.AssertClose(Name("LayerNormBackward.dbeta", shape), dbeta, e.Dbeta, Accum(rows), e.DbetaScale);
        }
    }

    [Test]
    public void LayerNormBackwardIsDeterministic()
    {
        int[] shape = [37, 20];   // more rows than one LayerNorm parameter-gradient block
        var (x, _) = Input(shape);
        var (gamma, _) = Input(20);
        var (beta, _) = Input(20);
        var (dy, _) = Input(shape);
        using (x) using (gamma) using (beta) using (dy)
        {
            var (y, mean, rstd) = Ops.LayerNorm(x, gamma, beta);
            using (y) using (mean) using (rstd)
            {
                var first = Ops.LayerNormBackward(dy, x, mean, rstd, gamma);
                var second = Ops.LayerNormBackward(dy, x, mean, rstd, gamma);
                using (first.Dx) using (first.Dgamma) using (first.Dbeta) using (second.Dx) using (second.Dgamma) using (second.Dbeta)
                {
                    Assert.That(second.Dx.ToArray(), Is.EqualTo(first.Dx.ToArray()), "dx");
                    Assert.That(second.Dgamma.ToArray(), Is.EqualTo(first.Dgamma.ToArray()), "dgamma");
                    Assert.That(second.Dbeta.ToArray(), Is.EqualTo(first.Dbeta.ToArray()), "dbeta");
                }
            }
        }
    }

    /// <summary>
    /// With eps comparable to the variance, eps inside vs outside the sqrt (and biased vs unbiased variance) change the
    /// result by percents: the engine must match the PyTorch definition in the reference.
    /// </summary>
    [Test]
    public void LargeEpsMatchesPyTorchDefinition()
    {
        const float eps = 0.25f;
        int[] gnShape = [2, 8, 3, 5], lnShape = [6, 10];
        var (x, rx) = Input(gnShape);
        var (gamma, rg) = Input(8);
        var (beta, rb) = Input(8);
        var (xl, rxl) = Input(lnShape);
        var (gl, rgl) = Input(10);
        var (bl, rbl) = Input(10);
        using (x) using (gamma) using (beta) using (xl) using (gl) using (bl)
        {
            using var y = Poisoned(gnShape);
            using var mean = Poisoned(2, 4);
            using var rstd = Poisoned(2, 4);
            Ops.GroupNorm(x, 4, gamma, beta, eps, y, mean, rstd);
            var e = Ref.GroupNorm(rx, gnShape, 4, rg, rb, null, null, false, eps, out _, out var rRstd, out var yScale);
            Compare.AssertClose(Name("GroupNormForward.y eps 0.25", gnShape), y, e, Accum(30), yScale);
            Compare.AssertClose(Name("GroupNormForward.rstd eps 0.25", gnShape), rstd, rRstd, Accum(30));

            using var yl = Poisoned(lnShape);
            using var meanl = Poisoned(6);
            using var rstdl = Poisoned(6);
            Ops.LayerNorm(xl, gl, bl, eps, yl, meanl, rstdl);
            var el = Ref.LayerNorm(rxl, 10, rgl, rbl, eps, out _, out var rRstdl, out var yScalel);
            Compare.AssertClose(Name("LayerNormForward.y eps 0.25", lnShape), yl, el, Accum(10), yScalel);
            Compare.AssertClose(Name("LayerNormForward.rstd eps 0.25", lnShape), rstdl, rRstdl, Accum(10));
        }
    }

    // ---- bad arguments ----------------------------------------------------------------------------------------------

    static void ExpectArgumentError(Action call, params string[] fragments)
    {
        var ex = Assert.Throws<ArgumentException>(call)!;
        foreach (var f in fragments) Assert.That(ex.Message, Does.Contain(f));
    }

    [Test]
    public void GroupNormBadArgumentsThrow()
    {
        using var x = B.Zeros(2, 64, 3, 3);
        using var g64 = B.Zeros(64);
        using var g32 = B.Zeros(32);
        using var g2d = B.Zeros(1, 64);
        using var ab = B.Zeros(2, 64);
        using var abWrong = B.Zeros(2, 32);
        using var x1 = B.Zeros(64);
        using var xEmpty = B.Zeros(2, 64, 0);
        using var gBf16 = B.Empty(DType.BF16, 64);   // x may be BF16 (autocast's conv output); gamma and beta may not
        using var stats = B.Zeros(2, 32);
        using var statsWrong = B.Zeros(2, 16);
        using var dyWrong = B.Zeros(2, 64, 3, 4);
        using var dyAlias = B.Zeros(2, 64, 3, 3);
        using var yWrong = B.Zeros(2, 64, 3);
        using var other = new CpuBackend();
        using var gOther = other.Zeros(64);

        ExpectArgumentError(() => Ops.GroupNorm(x, 24, g64, g64), "GroupNorm", "24 groups", "[2,64,3,3]");
        ExpectArgumentError(() => Ops.GroupNorm(x, 0, g64, g64), "GroupNorm", "0 groups");
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, g32, g64), "GroupNorm", "gamma [32]", "[2,64,3,3]");
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, g64, g2d), "GroupNorm", "beta [1,64]");
        ExpectArgumentError(() => Ops.GroupNorm(x1, 1, g64, g64), "GroupNorm", "rank", "[64]");
        ExpectArgumentError(() => Ops.GroupNorm(xEmpty, 32, g64, g64), "GroupNorm", "[2,64,0]");
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, gBf16, g64), "GroupNorm", "BF16");
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, gOther, g64), "GroupNorm", "different devices");
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, g64, g64, eps: -1f), "GroupNorm", "eps");
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, g64, g64, y: yWrong), "GroupNorm", "[2,64,3]");
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, g64, g64, mean: statsWrong), "GroupNorm", "mean", "[2,16]");
        ExpectArgumentError(() => Ops.GroupNormFilmSilu(x, 32, g64, g64, abWrong, ab), "GroupNormFilmSilu", "a [2,32]", "[2,64,3,3]");
        ExpectArgumentError(() => Ops.GroupNormFilmSilu(x, 32, g64, g64, ab, abWrong), "GroupNormFilmSilu", "b [2,32]");
        ExpectArgumentError(() => Ops.GroupNormFilmSilu(x, 32, g64, g64, ab, null), "GroupNormFilmSilu", "both");
        ExpectArgumentError(() => Ops.GroupNormSilu(x, 5, g64, g64), "GroupNormSilu", "5 groups");
        ExpectArgumentError(() => Ops.GroupNormBackward(dyWrong, x, stats, stats, g64, 32), "GroupNormBackward", "[2,64,3,4]", "[2,64,3,3]");
        ExpectArgumentError(() => Ops.GroupNormBackward(x, x, statsWrong, stats, g64, 32), "GroupNormBackward", "mean [2,16]");
        ExpectArgumentError(() => Ops.GroupNormBackward(x, x, stats, stats, g64, 7), "GroupNormBackward", "7 groups");
        ExpectArgumentError(() => Ops.GroupNormSiluBackward(x, x, stats, stats, g64, g32, 32), "GroupNormSiluBackward", "beta [32]");
        ExpectArgumentError(() => Ops.GroupNormFilmSiluBackward(x, x, stats, stats, g64, g64, ab, abWrong, 32), "GroupNormFilmSiluBackward", "b [2,32]");
        ExpectArgumentError(() => Ops.GroupNormFilmSiluBackward(x, x, stats, stats, g64, g64, null, null, 32, da: ab), "GroupNormFilmSiluBackward", "da/db");
        ExpectArgumentError(() => Ops.GroupNormFilmSiluBackward(x, x, stats, stats, g64, g64, ab, ab, 32, dgamma: g32), "GroupNormFilmSiluBackward", "dgamma", "[32]");
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, g64, g64, y: x), "GroupNorm", "overlaps", "[2,64,3,3]");
        ExpectArgumentError(() => Ops.GroupNormBackward(dyAlias, x, stats, stats, g64, 32, dx: dyAlias), "GroupNormBackward", "overlaps");
        using var statsPair = B.Zeros(2, 2, 32);
        using var meanView = statsPair.Slice(0, 1).Reshape(2, 32);
        using var rstdView = statsPair.Slice(1, 1).Reshape(2, 32);
        using var meanOverlap = statsPair.Reshape(4, 32).Slice(1, 2);
        ExpectArgumentError(() => Ops.GroupNorm(x, 32, g64, g64, mean: meanView, rstd: meanOverlap), "GroupNorm", "overlaps");
        var (yOk, _, _) = Ops.GroupNorm(x, 32, g64, g64, mean: meanView, rstd: rstdView);   // disjoint views of one buffer are fine
        yOk.Dispose();
    }

    [Test]
    public void LayerNormBadArgumentsThrow()
    {
        using var x = B.Zeros(5, 16);
        using var g16 = B.Zeros(16);
        using var g5 = B.Zeros(5);
        using var g2d = B.Zeros(1, 16);
        using var scalar = B.Zeros();
        using var xEmpty = B.Zeros(5, 0);
        using var xBf16 = B.Empty(DType.BF16, 5, 16);
        using var stats = B.Zeros(5);
        using var statsWrong = B.Zeros(5, 1);
        using var dyWrong = B.Zeros(5, 17);
        using var other = new CpuBackend();
        using var xOther = other.Zeros(5, 16);

        ExpectArgumentError(() => Ops.LayerNorm(x, g5, g16), "LayerNorm", "gamma [5]", "[5,16]");
        ExpectArgumentError(() => Ops.LayerNorm(x, g16, g2d), "LayerNorm", "beta [1,16]");
        ExpectArgumentError(() => Ops.LayerNorm(scalar, g16, g16), "LayerNorm", "rank", "[]");
        ExpectArgumentError(() => Ops.LayerNorm(xEmpty, g16, g16), "LayerNorm", "[5,0]");
        ExpectArgumentError(() => Ops.LayerNorm(xBf16, g16, g16), "LayerNorm", "BF16");
        ExpectArgumentError(() => Ops.LayerNorm(xOther, g16, g16), "LayerNorm", "different devices");
        ExpectArgumentError(() => Ops.LayerNorm(x, g16, g16, eps: float.NaN), "LayerNorm", "eps");
        ExpectArgumentError(() => Ops.LayerNorm(x, g16, g16, rstd: statsWrong), "LayerNorm", "rstd", "[5,1]");
        ExpectArgumentError(() => Ops.LayerNormBackward(dyWrong, x, stats, stats, g16), "LayerNormBackward", "[5,17]", "[5,16]");
        ExpectArgumentError(() => Ops.LayerNormBackward(x, x, statsWrong, stats, g16), "LayerNormBackward", "mean [5,1]");
        ExpectArgumentError(() => Ops.LayerNormBackward(x, x, stats, stats, g5), "LayerNormBackward", "gamma [5]");
        ExpectArgumentError(() => Ops.LayerNormBackward(x, x, stats, stats, g16, dbeta: g5), "LayerNormBackward", "dbeta", "[5]");
        ExpectArgumentError(() => Ops.LayerNormBackward(x, x, stats, stats, g16, dgamma: g16), "LayerNormBackward", "overlaps", "[16]");
        ExpectArgumentError(() => Ops.LayerNorm(x, g16, g16, mean: stats, rstd: stats), "LayerNorm", "overlaps", "[5]");
    }

    /// <summary>An empty batch is allowed: nothing to normalise, parameter gradients are zero.</summary>
    [Test]
    public void EmptyBatchGivesZeroParameterGradients()
    {
        using var x = B.Zeros(0, 64, 3, 3);
        using var gamma = B.Full(1f, 64);
        using var beta = B.Zeros(64);
        var (y, mean, rstd) = Ops.GroupNorm(x, 32, gamma, beta);
        using (y) using (mean) using (rstd)
        {
            Assert.That(mean.Shape, Is.EqualTo(new[] { 0, 32 }));
            using var dgamma = Poisoned(64);
            using var dbeta = Poisoned(64);
            var (dx, _, _) = Ops.GroupNormBackward(x, x, mean, rstd, gamma, 32, dgamma: dgamma, dbeta: dbeta);
            using (dx)
            {
                Assert.That(dgamma.ToArray(), Is.All.EqualTo(0f));
                Assert.That(dbeta.ToArray(), Is.All.EqualTo(0f));
            }
        }
    }
}

[BackendFixtures(BackendKind.Cpu)]
public class NormModelSizeTests_Cpu() : NormOpTests(BackendKind.Cpu)
{
    [Test] public void GroupNormFilmSiluModelSize() => CheckModelSizeFused();

    /// <summary>The one-pass statistics on data far from zero (x + 1000), where unshifted sums would cancel.</summary>
    [TestCase(false, false)]
    [TestCase(true, true)]
    public void GroupNormFarFromZero(bool film, bool silu) => CheckForward([2, 16, 9, 9], 4, film, silu, offset: 1000f);
}

[BackendFixtures(BackendKind.Cuda)]
public class NormModelSizeTests_Cuda() : NormOpTests(BackendKind.Cuda)
{
    [Test] public void GroupNormFilmSiluModelSize() => CheckModelSizeFused();
}

/// <summary>The float64 norm references' backwards equal finite differences of their forwards (every input, every output).</summary>
public class NormReferenceGradcheckTests
{
    Random rng = null!;
    [SetUp] public void Seed() => rng = TestSeed.NewRandom();

    double[] R(int n, float lo = -1f, float hi = 1f) => TestSeed.ToDouble(TestSeed.Uniform(rng, n, lo, hi));

    const double Eps = 1e-5;

    [TestCase(false, false, TestName = "GroupNorm")]
    [TestCase(true, false, TestName = "GroupNormSilu")]
    [TestCase(true, true, TestName = "GroupNormFilmSilu")]
    public void GroupNormReference(bool silu, bool film)
    {
        int[] shape = [2, 6, 3, 2];   // G = 3: two channels per group, 12 elements per group
        const int groups = 3;
        int n = 2, c = 6, len = 72;
        var x = R(len, -2f, 2f); var gamma = R(c, -2f, 2f); var beta = R(c); var dy = R(len);
        double[]? a = film ? R(n * c) : null, b = film ? R(n * c) : null;
        var g = Ref.GroupNormBackward(dy, x, shape, groups, gamma, beta, a, b, silu, Eps);
        Gradcheck.Check("dx", v => Ref.GroupNorm(v, shape, groups, gamma, beta, a, b, silu, Eps, out _, out _, out _), x, dy, g.Dx);
        Gradcheck.Check("dgamma", v => Ref.GroupNorm(x, shape, groups, v, beta, a, b, silu, Eps, out _, out _, out _), gamma, dy, g.Dgamma);
        Gradcheck.Check("dbeta", v => Ref.GroupNorm(x, shape, groups, gamma, v, a, b, silu, Eps, out _, out _, out _), beta, dy, g.Dbeta);
        if (film)
        {
            Gradcheck.Check("da", v => Ref.GroupNorm(x, shape, groups, gamma, beta, v, b, silu, Eps, out _, out _, out _), a!, dy, g.Da!);
            Gradcheck.Check("db", v => Ref.GroupNorm(x, shape, groups, gamma, beta, a, v, silu, Eps, out _, out _, out _), b!, dy, g.Db!);
        }
        else Assert.That(g.Da, Is.Null);
    }

    [Test]
    public void GroupNormReferenceOneDimensionalSpatial()
    {
        int[] shape = [1, 4, 7];
        var x = R(28, -2f, 2f); var gamma = R(4); var beta = R(4); var dy = R(28);
        var g = Ref.GroupNormBackward(dy, x, shape, 2, gamma, beta, null, null, false, Eps);
        Gradcheck.Check("dx", v => Ref.GroupNorm(v, shape, 2, gamma, beta, null, null, false, Eps, out _, out _, out _), x, dy, g.Dx);
    }

    [Test]
    public void LayerNormReference()
    {
        const int d = 5;
        var x = R(3 * d, -2f, 2f); var gamma = R(d, -2f, 2f); var beta = R(d); var dy = R(3 * d);
        var g = Ref.LayerNormBackward(dy, x, d, gamma, Eps);
        Gradcheck.Check("dx", v => Ref.LayerNorm(v, d, gamma, beta, Eps, out _, out _, out _), x, dy, g.Dx);
        Gradcheck.Check("dgamma", v => Ref.LayerNorm(x, d, v, beta, Eps, out _, out _, out _), gamma, dy, g.Dgamma);
        Gradcheck.Check("dbeta", v => Ref.LayerNorm(x, d, gamma, v, Eps, out _, out _, out _), beta, dy, g.Dbeta);
    }

    /// <summary>The references reproduce torch's definition on a hand-computed case: biased variance, eps inside the sqrt.</summary>
    [Test]
    public void ReferenceUsesBiasedVarianceWithEpsInsideSqrt()
    {
        double[] x = [1, 2, 3, 4];
        var y = Ref.LayerNorm(x, 4, [1, 1, 1, 1], [0, 0, 0, 0], 0.25, out var mean, out var rstd, out _);
        // mean 2.5, biased var 1.25, rstd = 1/sqrt(1.25 + 0.25)
        Assert.That(mean[0], Is.EqualTo(2.5).Within(1e-15));
        Assert.That(rstd[0], Is.EqualTo(1 / Math.Sqrt(1.5)).Within(1e-15));
        Assert.That(y[0], Is.EqualTo(-1.5 / Math.Sqrt(1.5)).Within(1e-15));
        var gy = Ref.GroupNorm(x, [1, 2, 2], 1, [1, 1], [0, 0], null, null, false, 0.25, out var gmean, out var grstd, out _);
        Assert.That(gmean[0], Is.EqualTo(2.5).Within(1e-15));
        Assert.That(grstd[0], Is.EqualTo(1 / Math.Sqrt(1.5)).Within(1e-15));
        Assert.That(gy, Is.EqualTo(y).Within(1e-15));
    }
}
