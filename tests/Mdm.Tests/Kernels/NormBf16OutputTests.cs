using Mdm.Kernels;
using Mdm.Kernels.Reference;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Kernels;

/// <summary>
/// The norms that write autocast's bf16 operand themselves (GroupNorm, GroupNorm + SiLU, GroupNorm + FiLM + SiLU with a
/// BF16 y): y against float64, within the bf16 rule (worst error at most twice that of the naive version, the f32 kernel's
/// y rounded to bf16 afterwards, plus a floor), every element written (NaN poison), and the f32 statistics as tight as in
/// the f32 kernel.
/// </summary>
[BackendFixtures]
public class NormBf16OutputTests(BackendKind kind) : KernelFixture(kind)
{
    const float Eps = 1e-5f;

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var (film, silu, mode) in new[] { (false, false, "norm"), (false, true, "silu"), (true, true, "film silu") })
        {
            yield return new TestCaseData(new[] { 2, 12, 5, 7 }, 4, film, silu).SetArgDisplayNames($"2x12x5x7 G4 {mode}");
            yield return new TestCaseData(new[] { 1, 8, 113 }, 2, film, silu).SetArgDisplayNames($"1x8x113 G2 {mode}");
            yield return new TestCaseData(new[] { 3, 6, 3, 3 }, 3, film, silu).SetArgDisplayNames($"3x6x3x3 G3 {mode}");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void WritesABf16CopyWithinTheBf16Rule(int[] shape, int groups, bool film, bool silu) => CheckBf16Copy(shape, groups, film, silu, bf16X: false);

    /// <summary>The same from a BF16 x (autocast's conv output feeding the ResNet block's norm2): bf16 in, bf16 out.</summary>
    [TestCaseSource(nameof(Cases))]
    public void WritesABf16CopyFromABf16Input(int[] shape, int groups, bool film, bool silu) => CheckBf16Copy(shape, groups, film, silu, bf16X: true);

    void CheckBf16Copy(int[] shape, int groups, bool film, bool silu, bool bf16X)
    {
        int n = shape[0], c = shape[1];
        var (x, rx) = bf16X ? BF16Input(shape) : Input(shape);
        var (gamma, rg) = Input(c);
        var (beta, rb) = Input(c);
        Tensor? a = null, b = null;
        double[]? ra = null, rbShift = null;
        if (film) { (a, ra) = Input(n, c); (b, rbShift) = Input(n, c); }
        using var y = PoisonedBF16(shape);
        using var mean = Poisoned(n, groups);
        using var rstd = Poisoned(n, groups);
        try
        {
            var (naive, naiveMean, naiveRstd) = Forward(x, groups, gamma, beta, a, b, silu, null, null, null, DType.F32);
            using (naiveMean) using (naiveRstd)
            using (naive)
            {
                var r = Forward(x, groups, gamma, beta, a, b, silu, y, mean, rstd, DType.BF16);
                Assert.That(r.Y, Is.SameAs(y));
                Assert.That(y.DType, Is.EqualTo(DType.BF16));
                var expected = Ref.GroupNorm(rx, shape, groups, rg, rb, ra, rbShift, silu, Eps, out _, out _, out var yScale);
                var naiveRounded = RoundedToBF16(naive.ToArray());
                var got = y.ToArray();
                double naiveError = MaxError(naiveRounded, expected), error = MaxError(got, expected);
                double floor = 1e-6 + 1e-5 * yScale.Max();
                string what = Name(silu ? film ? "GroupNormFilmSilu" : "GroupNormSilu" : "GroupNorm", shape) + $" G{groups}{(bf16X ? " bf16 x," : "")} bf16 y";
                TestContext.Out.WriteLine($"{what}: max error {error:G3}, naive (f32 then rounded) {naiveError:G3}");
                Assert.That(got.All(float.IsFinite), $"{what}: an element was left unwritten (NaN poison)\n{TestSeed.Describe()}");
                Assert.That(error, Is.LessThanOrEqualTo(2 * naiveError + floor), $"{what}\n{TestSeed.Describe()}");
                // bf16 keeps 8 significant bits: half an ulp is 2^-9 of |y|, on top of the f32 kernel's own error.
                Compare.AssertClose(what + " per element", got, expected, new Tolerance(1e-6, Math.Pow(2, -8)), yScale, shape);
                // The statistics are the f32 kernel's (checked against float64 by NormOpTests), whatever y's type.
                Compare.AssertClose(what + " mean", mean, TestSeed.ToDouble(naiveMean.ToArray()), Tolerance.F32Exact);
                Compare.AssertClose(what + " rstd", rstd, TestSeed.ToDouble(naiveRstd.ToArray()), Tolerance.F32Exact);
            }
        }
        finally { x.Dispose(); gamma.Dispose(); beta.Dispose(); a?.Dispose(); b?.Dispose(); }
    }

    [Test]
    public void RefusesAnOutputOfTheWrongType()
    {
        using var x = B.Zeros(1, 4, 3);
        using var gamma = B.Full(1f, 4);
        using var beta = B.Zeros(4);
        using var y = B.Empty(1, 4, 3);
        var e = Assert.Throws<ArgumentException>(() => Ops.GroupNormSilu(x, 2, gamma, beta, Eps, y, yType: DType.BF16));
        Assert.That(e!.Message, Does.Contain("GroupNormSilu").And.Contain("expected BF16"));
    }

    static (Tensor Y, Tensor Mean, Tensor Rstd) Forward(Tensor x, int groups, Tensor gamma, Tensor beta, Tensor? a, Tensor? b, bool silu,
        Tensor? y, Tensor? mean, Tensor? rstd, DType yType) =>
        !silu ? Ops.GroupNorm(x, groups, gamma, beta, Eps, y, mean, rstd, yType)
        : a is null ? Ops.GroupNormSilu(x, groups, gamma, beta, Eps, y, mean, rstd, yType)
        : Ops.GroupNormFilmSilu(x, groups, gamma, beta, a, b, Eps, y, mean, rstd, yType);

    static float[] RoundedToBF16(float[] v) => Array.ConvertAll(v, e => BFloat16.ToFloat(BFloat16.FromFloat(e)));

    static double MaxError(float[] got, double[] expected)
    {
        double worst = 0;
        for (int i = 0; i < got.Length; i++) worst = Math.Max(worst, Math.Abs(got[i] - expected[i]));
        return worst;
    }
}
