using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Kernels.Gpu.Tuning;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Kernels;

/// <summary>
/// Every GroupNorm forward variant of the ILGPU backends (two-pass, one-pass, warp rows) against float64, with and
/// without FiLM and SiLU, on odd shapes and on data far from zero (where one-pass sums would cancel without the shift).
/// </summary>
[BackendFixtures(BackendKind.IlgpuCpu, BackendKind.Cuda)]
public class GroupNormVariantTests(BackendKind kind) : NormOpTests(kind)
{
    public static IEnumerable<TestCaseData> VariantCases()
    {
        foreach (var variant in TuningTable.Variants[TuningTable.GroupNormOp])
        {
            yield return new TestCaseData(variant, new[] { 2, 64, 9, 9 }, 32, true, true, 0f).SetArgDisplayNames($"{variant} 2x64x9x9 G32 film silu");
            yield return new TestCaseData(variant, new[] { 3, 32, 5, 7 }, 32, false, false, 0f).SetArgDisplayNames($"{variant} 3x32x5x7 G32");
            yield return new TestCaseData(variant, new[] { 1, 8, 113 }, 4, false, true, 0f).SetArgDisplayNames($"{variant} 1x8x113 G4 silu");
            yield return new TestCaseData(variant, new[] { 2, 16, 24, 40 }, 8, true, true, 0f).SetArgDisplayNames($"{variant} 2x16x24x40 G8 film silu");
            yield return new TestCaseData(variant, new[] { 2, 16, 9, 9 }, 4, true, true, 1000f).SetArgDisplayNames($"{variant} 2x16x9x9 G4 film silu, x + 1000");
        }
    }

    [TestCaseSource(nameof(VariantCases))]
    public void ForwardVariantMatchesReference(string variant, int[] shape, int groups, bool film, bool silu, float offset)
    {
        var gpu = (IlgpuBackend)B;
        gpu.GroupNormForwardVariant = variant;
        try { CheckForward(shape, groups, film, silu, offset); }
        finally { gpu.GroupNormForwardVariant = null; }
    }

    /// <summary>Each variant reading a BF16 x (autocast's conv output).</summary>
    [TestCaseSource(nameof(VariantCases))]
    public void ForwardVariantBF16InputMatchesReference(string variant, int[] shape, int groups, bool film, bool silu, float offset)
    {
        var gpu = (IlgpuBackend)B;
        gpu.GroupNormForwardVariant = variant;
        try { CheckForward(shape, groups, film, silu, offset, bf16X: true); }
        finally { gpu.GroupNormForwardVariant = null; }
    }

    [Test]
    public void UnknownVariantIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => ((IlgpuBackend)B).GroupNormForwardVariant = "three-pass");
        Assert.That(e!.Message, Does.Contain("three-pass").And.Contain(GroupNormVariant.WarpRows));
    }
}
