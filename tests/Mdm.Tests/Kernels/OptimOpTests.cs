using Mdm.Kernels;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>MSE loss (mean and per sample) and its backward, the per-sample quantile of |x|, the global gradient norm,
/// fused Adam/AdamW with clipping, and the EMA update, against float64.</summary>
[BackendFixtures]
public class OptimOpTests(BackendKind kind) : KernelFixture(kind)
{
    /// <summary>Summation budget: a few float eps per √n of the sum of magnitudes (as ReduceOpTests).</summary>
    static Tolerance SumTolerance(long n) => new(1e-7, 4 * 6e-8 * Math.Sqrt(n) + 1e-6);

    // ---- MSE ---------------------------------------------------------------------------------------------------

    public static IEnumerable<int[]> MseShapes() => [[2, 3, 9, 9], [5, 113], [4, 2, 17, 17], [7], [1, 1]];

    [TestCaseSource(nameof(MseShapes))]
    public void MseForward(int[] shape)
    {
        var (x, rx) = Input(shape);
        var (y, ry) = Input(shape);
        using (x) using (y)
        {
            int n = shape[0];
            long rowLen = Shape.Numel(shape) / n;
            using var perSample = Poisoned(n);
            Ops.MseLossPerSample(x, y, perSample);
            var expectedRows = Ref.MseRows(rx, ry, n);
            Compare.AssertClose(Name("MseLossPerSample", shape), perSample, expectedRows, SumTolerance(rowLen));

            using var mean = Poisoned();
            Ops.MseLoss(x, y, mean);
            Assert.That(mean.Shape, Is.Empty, "MseLoss returns a scalar tensor");
            var expectedMean = Ref.MseRows(rx, ry, 1);
            Compare.AssertClose(Name("MseLoss", shape), mean, expectedMean, SumTolerance(x.Numel));
        }
    }

    [TestCaseSource(nameof(MseShapes))]
    public void MseBackward(int[] shape)
    {
        var (x, rx) = Input(shape);
        var (y, ry) = Input(shape);
        int n = shape[0];
        var (dy, rdy) = Input(n);
        var (dyMean, rdyMean) = Input();
        using (x) using (y) using (dy) using (dyMean)
        {
            using var dx = Poisoned(shape);
            Ops.MseLossPerSampleBackward(x, y, dy, dx);
            Compare.AssertClose(Name("MseLossPerSampleBackward", shape), dx, Ref.MseRowsBackward(rx, ry, rdy), Tolerance.F32Elementwise);

            using var dxMean = Poisoned(shape);
            Ops.MseLossBackward(x, y, dyMean, dxMean);
            Compare.AssertClose(Name("MseLossBackward", shape), dxMean, Ref.MseRowsBackward(rx, ry, rdyMean), Tolerance.F32Elementwise);
        }
    }

    [Test]
    public void MseZeroWhenEqual()
    {
        var (x, _) = Input(3, 5, 5);
        using (x)
        {
            using var l = Ops.MseLossPerSample(x, x);
            Assert.That(l.ToArray(), Is.EqualTo(new float[3]));
        }
    }

    // ---- quantile ----------------------------------------------------------------------------------------------

    public static IEnumerable<TestCaseData> QuantileCases()
    {
        int[][] shapes = [[3, 3, 9, 9], [2, 113], [1, 1], [2, 1031]];
        double[] ps = [0.995, 0.95, 0, 1, 0.5];
        foreach (var s in shapes)
            foreach (var p in ps)
                yield return new TestCaseData(s, p).SetArgDisplayNames(string.Join("x", s), $"p={p}");
    }

    [TestCaseSource(nameof(QuantileCases))]
    public void Quantile(int[] shape, double p)
    {
        var (x, rx) = Input(shape);
        using (x) CheckQuantile("QuantileAbs", x, rx, shape, p);
    }

    /// <summary>Few distinct magnitudes, both signs, zeros: ties at and around the interpolated ranks.</summary>
    [TestCase(0.995), TestCase(0.95), TestCase(0.0), TestCase(1.0), TestCase(0.37)]
    public void QuantileRepeatedValues(double p)
    {
        int[] shape = [3, 3, 9, 9];
        float[] levels = [0f, 0.25f, -0.25f, 0.5f, -0.5f, 1f, -1f, 2f, -2f];
        var f = new float[Shape.Numel(shape)];
        for (int i = 0; i < f.Length; i++) f[i] = levels[Rng.Next(levels.Length)];
        for (int i = 0; i < 243; i++) f[2 * 243 + i] = (i & 1) == 0 ? 0.75f : -0.75f;   // one sample of a single magnitude
        using var x = Upload(f, shape);
        CheckQuantile("QuantileAbs repeated", x, TestSeed.ToDouble(f), shape, p);
    }

    /// <summary>Magnitudes spread over 2^-120 .. 2^100, where only a bit-exact selection gets the order right.</summary>
    [TestCase(0.995), TestCase(0.5), TestCase(0.0)]
    public void QuantileWideRange(double p)
    {
        int[] shape = [2, 3, 7, 7];
        var f = new float[Shape.Numel(shape)];
        for (int i = 0; i < f.Length; i++)
            f[i] = (Rng.Next(2) == 0 ? -1f : 1f) * (float)Math.Pow(2, -120 + 220 * Rng.NextDouble());
        using var x = Upload(f, shape);
        CheckQuantile("QuantileAbs wide range", x, TestSeed.ToDouble(f), shape, p);
    }

    [Test]
    public void QuantileNaNSample()
    {
        int[] shape = [2, 50];
        var f = TestSeed.Uniform(Rng, 100);
        f[7] = float.NaN;   // sample 0 holds a NaN: torch.quantile gives NaN; sample 1 is unaffected
        using var x = Upload(f, shape);
        CheckQuantile("QuantileAbs NaN", x, TestSeed.ToDouble(f), shape, 0.5);
    }

    void CheckQuantile(string what, Tensor x, double[] rx, int[] shape, double p)
    {
        using var q = Poisoned(shape[0]);
        Ops.QuantileAbs(x, p, q);
        Compare.AssertClose(Name(what, shape) + $" p={p}", q, Ref.QuantileAbs(rx, shape[0], p), Tolerance.F32Elementwise);
    }

    // ---- global norm -------------------------------------------------------------------------------------------

    public static IEnumerable<TestCaseData> NormCases()
    {
        yield return new TestCaseData((object)new[] { new[] { 3, 5, 7 }, new[] { 113 }, new[] { 1 }, new[] { 17, 9, 3 } }).SetArgDisplayNames("3x5x7,113,1,17x9x3");
        yield return new TestCaseData((object)new[] { new[] { 113, 9 }, new[] { 0, 3 }, new[] { 31 }, new[] { 2, 3, 9, 9 } }).SetArgDisplayNames("113x9,0x3,31,2x3x9x9");
    }

    [TestCaseSource(nameof(NormCases))]
    public void GlobalNormForward(int[][] shapes)
    {
        var inputs = shapes.Select(s => Input(s)).ToList();
        try
        {
            var tensors = inputs.Select(i => i.t).ToList();
            using var norm = Poisoned();
            Ops.GlobalNorm(tensors, norm);
            long n = shapes.Sum(s => Shape.Numel(s));
            Compare.AssertClose($"GlobalNorm {string.Join(" ", shapes.Select(s => Shape.Format(s)))} on {Backends.KindName(Kind)}",
                norm, [Ref.GlobalNorm(inputs.Select(i => i.r))], SumTolerance(n));
            using var again = Ops.GlobalNorm(tensors);
            Assert.That(again.Item(), Is.EqualTo(norm.Item()), "GlobalNorm is deterministic (same bits twice)");
        }
        finally { foreach (var i in inputs) i.t.Dispose(); }
    }

    // ---- Adam / AdamW ------------------------------------------------------------------------------------------

    public static IEnumerable<TestCaseData> AdamCases()
    {
        // decoupled, weight decay, eps, max norm (null: no clipping)
        yield return new TestCaseData(false, 0.1, 1e-8, (double?)0.5).SetArgDisplayNames("Adam L2 clip active");
        yield return new TestCaseData(false, 0.0, 1e-3, (double?)1e4).SetArgDisplayNames("Adam clip inactive");
        yield return new TestCaseData(false, 0.1, 1e-8, (double?)null).SetArgDisplayNames("Adam L2 no clip");
        yield return new TestCaseData(true, 0.05, 1e-8, (double?)0.5).SetArgDisplayNames("AdamW decay clip active");
        yield return new TestCaseData(true, 0.01, 1e-3, (double?)1e4).SetArgDisplayNames("AdamW decay clip inactive");
        yield return new TestCaseData(true, 0.0, 1e-8, (double?)2.0).SetArgDisplayNames("AdamW ml-mdm");
    }

    [TestCaseSource(nameof(AdamCases))]
    public void AdamSteps(bool decoupled, double weightDecay, double eps, double? maxNorm)
    {
        int[][] shapes = [[3, 5, 7], [113], [1], [9, 9]];
        const double lr = 1e-2, beta1 = 0.9, beta2 = 0.999;
        var options = decoupled ? AdamOptions.AdamW(lr, weightDecay, beta1, beta2, eps) : AdamOptions.Adam(lr, weightDecay, beta1, beta2, eps);
        var inputs = shapes.Select(s => Input(s)).ToList();
        var p = inputs.Select(i => i.t).ToList();
        var m = shapes.Select(s => B.Zeros(s)).ToList();
        var v = shapes.Select(s => B.Zeros(s)).ToList();
        var rp = inputs.Select(i => i.r).ToArray();
        var rm = shapes.Select(s => new double[Shape.Numel(s)]).ToArray();
        var rv = shapes.Select(s => new double[Shape.Numel(s)]).ToArray();
        var rmAbs = shapes.Select(s => new double[Shape.Numel(s)]).ToArray();
        try
        {
            for (int step = 1; step <= 5; step++)
            {
                var grads = shapes.Select(s => Input(s)).ToList();
                var g = grads.Select(x => x.t).ToList();
                try
                {
                    if (maxNorm is double mx)
                    {
                        using var norm = Ops.GlobalNorm(g);
                        Ops.AdamStep(p, g, m, v, options, step, norm, (float)mx);
                    }
                    else Ops.AdamStep(p, g, m, v, options, step);
                    Ref.AdamStep(rp, grads.Select(x => x.r).ToArray(), rm, rv, rmAbs, lr, beta1, beta2, eps, weightDecay, decoupled, step, maxNorm);
                }
                finally { foreach (var x in grads) x.t.Dispose(); }
            }
            for (int t = 0; t < shapes.Length; t++)
            {
                string what = Name(decoupled ? "AdamW" : "Adam", shapes[t]) + $" wd={weightDecay} eps={eps} maxNorm={maxNorm}";
                Compare.AssertClose(what + " param", p[t], rp[t], new Tolerance(1e-7, 2e-6));
                Compare.AssertClose(what + " exp_avg", m[t], rm[t], new Tolerance(1e-9, 1e-5), rmAbs[t]);
                Compare.AssertClose(what + " exp_avg_sq", v[t], rv[t], new Tolerance(1e-12, 1e-5));
            }
        }
        finally { foreach (var t in p.Concat(m).Concat(v)) t.Dispose(); }
    }

    /// <summary>The clip really scales the gradient: the first-step m equals (1 − β1)·clip·g.</summary>
    [Test]
    public void AdamClipScalesGradient()
    {
        var (g, rg) = Input(113);
        using (g)
        {
            using var p = B.Zeros(113);
            using var m = B.Zeros(113);
            using var v = B.Zeros(113);
            using var norm = Ops.GlobalNorm([g]);
            Ops.AdamStep(p, g, m, v, AdamOptions.Adam(1e-3), 1, norm, 0.25f);
            double clip = 0.25 / (Ref.GlobalNorm([rg]) + 1e-6);
            Assert.That(clip, Is.LessThan(0.2), "the test needs an active clip");
            Compare.AssertClose("AdamStep clipped exp_avg", m, rg.Select(x => 0.1 * clip * x).ToArray(), new Tolerance(1e-9, 1e-5));
        }
    }

    // ---- EMA ---------------------------------------------------------------------------------------------------

    [TestCase(0.9f), TestCase(0.9999f)]
    public void EmaUpdates(float decay)
    {
        int[][] shapes = [[3, 5, 7], [113], [1]];
        var emas = shapes.Select(s => Input(s)).ToList();
        try
        {
            var e = emas.Select(x => x.t).ToList();
            var re = emas.Select(x => x.r).ToArray();
            for (int u = 0; u < 3; u++)
            {
                var ps = shapes.Select(s => Input(s)).ToList();
                try
                {
                    Ops.EmaUpdate(e, ps.Select(x => x.t).ToList(), decay);
                    for (int t = 0; t < shapes.Length; t++) Ref.Ema(re[t], ps[t].r, decay);
                }
                finally { foreach (var x in ps) x.t.Dispose(); }
            }
            for (int t = 0; t < shapes.Length; t++)
                Compare.AssertClose(Name("EmaUpdate", shapes[t]) + $" decay={decay}", e[t], re[t], Tolerance.F32Elementwise);
        }
        finally { foreach (var x in emas) x.t.Dispose(); }
    }

    // ---- bad arguments -----------------------------------------------------------------------------------------

    static void ExpectThrow(string op, string shape, Action call) =>
        Assert.That(call, Throws.ArgumentException.With.Message.Contains(op).And.Message.Contains(shape));

    [Test]
    public void BadArguments()
    {
        using var a = B.Zeros(2, 3);
        using var b = B.Zeros(3, 2);
        using var n2 = B.Zeros(2);
        using var n3 = B.Zeros(3);
        using var s = B.Zeros();
        using var bf = B.Empty(DType.BF16, 2, 3);
        using var empty = B.Zeros(2, 0);

        ExpectThrow("MseLoss", "[3,2]", () => Ops.MseLoss(a, b).Dispose());
        ExpectThrow("MseLossPerSample", "[3,2]", () => Ops.MseLossPerSample(a, b).Dispose());
        ExpectThrow("MseLoss", "BF16", () => Ops.MseLoss(bf, a).Dispose());
        ExpectThrow("MseLossBackward", "[2]", () => Ops.MseLossBackward(a, a, n2).Dispose());
        ExpectThrow("MseLossPerSampleBackward", "[3]", () => Ops.MseLossPerSampleBackward(a, a, n3).Dispose());
        ExpectThrow("MseLossPerSample", "[3]", () => Ops.MseLossPerSample(a, a, n3));

        ExpectThrow("QuantileAbs", "[2,3]", () => Ops.QuantileAbs(a, 1.5).Dispose());
        ExpectThrow("QuantileAbs", "[2,3]", () => Ops.QuantileAbs(a, -0.1).Dispose());
        ExpectThrow("QuantileAbs", "[2,3]", () => Ops.QuantileAbs(a, double.NaN).Dispose());
        ExpectThrow("QuantileAbs", "BF16", () => Ops.QuantileAbs(bf, 0.5).Dispose());
        ExpectThrow("QuantileAbs", "[2,0]", () => Ops.QuantileAbs(empty, 0.5).Dispose());
        ExpectThrow("QuantileAbs", "[3]", () => Ops.QuantileAbs(a, 0.5, n3));

        ExpectThrow("GlobalNorm", "empty", () => Ops.GlobalNorm([]).Dispose());
        ExpectThrow("GlobalNorm", "BF16", () => Ops.GlobalNorm([a, bf]).Dispose());
        ExpectThrow("GlobalNorm", "[2]", () => Ops.GlobalNorm([a], n2));

        var opt = AdamOptions.AdamW(1e-3);
        using var a2 = B.Zeros(2, 3);
        using var a3 = B.Zeros(2, 3);
        using var a4 = B.Zeros(2, 3);
        ExpectThrow("AdamStep", "[3,2]", () => Ops.AdamStep(a, b, a3, a4, opt, 1));
        ExpectThrow("AdamStep", "[3,2]", () => Ops.AdamStep(a, a2, b, a4, opt, 1));
        ExpectThrow("AdamStep", "[3,2]", () => Ops.AdamStep(a, a2, a3, b, opt, 1));
        ExpectThrow("AdamStep", "[3,2]", () => Ops.AdamStep([a, b], [a2, a2], [a3, a3], [a4, a4], opt, 1));
        ExpectThrow("AdamStep", "BF16", () => Ops.AdamStep(bf, a2, a3, a4, opt, 1));
        ExpectThrow("AdamStep", "empty", () => Ops.AdamStep([], [], [], [], opt, 1));
        ExpectThrow("AdamStep", "differ", () => Ops.AdamStep([a], [a2, a2], [a3], [a4], opt, 1));
        ExpectThrow("AdamStep", "step", () => Ops.AdamStep(a, a2, a3, a4, opt, 0));
        ExpectThrow("AdamStep", "[2]", () => Ops.AdamStep(a, a2, a3, a4, opt, 1, n2, 1f));
        ExpectThrow("AdamStep", "max norm", () => Ops.AdamStep(a, a2, a3, a4, opt, 1, s, 0f));
        ExpectThrow("AdamStep", "betas", () => Ops.AdamStep(a, a2, a3, a4, opt with { Beta1 = 1.0 }, 1));

        ExpectThrow("EmaUpdate", "[3,2]", () => Ops.EmaUpdate(a, b, 0.99f));
        ExpectThrow("EmaUpdate", "decay", () => Ops.EmaUpdate(a, a2, 1.5f));
        ExpectThrow("EmaUpdate", "empty", () => Ops.EmaUpdate([], [], 0.99f));
        ExpectThrow("EmaUpdate", "BF16", () => Ops.EmaUpdate([bf], [a], 0.99f));

        var other = TestBackends.Get(Kind == BackendKind.Cpu ? BackendKind.IlgpuCpu : BackendKind.Cpu);
        using var elsewhere = other.Zeros(2, 3);
        ExpectThrow("AdamStep", "different devices", () => Ops.AdamStep(a, elsewhere, a3, a4, opt, 1));
        ExpectThrow("MseLoss", "different devices", () => Ops.MseLoss(a, elsewhere).Dispose());
    }
}

/// <summary>The float64 MSE references' backward formulas equal finite differences of their forwards.</summary>
public class OptimReferenceGradcheck
{
    Random rng = null!;
    [SetUp] public void Seed() => rng = TestSeed.NewRandom();

    double[] R(int n) => TestSeed.ToDouble(TestSeed.Uniform(rng, n, -2f, 2f));

    [Test]
    public void MsePerSample()
    {
        var x = R(3 * 7); var y = R(3 * 7); var dy = R(3);
        Gradcheck.Check("MseRows per sample", v => Ref.MseRows(v, y, 3), x, dy, Ref.MseRowsBackward(x, y, dy));
    }

    [Test]
    public void MseMean()
    {
        var x = R(2 * 3 * 3); var y = R(2 * 3 * 3); var dy = R(1);
        Gradcheck.Check("MseRows mean", v => Ref.MseRows(v, y, 1), x, dy, Ref.MseRowsBackward(x, y, dy));
    }
}
