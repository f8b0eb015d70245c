using Mdm.Kernels.Gpu.Tuning;
using Mdm.Tests.Model;

namespace Mdm.Tests.Kernels;

/// <summary>
/// Which tensor-core GEMM variant each UNet GEMM of the paper's ImageNet 64 → 256 model (configs/imagenet-64-256.json,
/// batch 8) gets: with no table entry (the stated heuristic), with the committed table on sm_90, and with a table entry
/// that names a short-K variant. Per level (r², c channels): the linear / 1×1 conv (c × 8r² × c), the 3×3 conv as a
/// GEMM (c × 8r² × 9c), and the weight gradient (c × c × 8r²).
/// </summary>
public class GemmVariantChoiceTests
{
    const int Batch = 8;

    [TestCase(64, Batch * 256 * 256, 64, GemmVariant.M64BK32, GemmVariant.M64BK32, TestName = "outer 256² c64 1x1: short K, many tiles")]
    [TestCase(64, Batch * 256 * 256, 9 * 64, GemmVariant.Narrow, GemmVariant.Narrow, TestName = "outer 256² c64 3x3: K 576 is past the short-K bound")]
    [TestCase(64, 64, Batch * 256 * 256, GemmVariant.Wide, GemmVariant.Wide, TestName = "outer 256² c64 weight gradient: one tile, long K")]
    [TestCase(128, Batch * 128 * 128, 128, GemmVariant.M64BK32, GemmVariant.M64BK32, TestName = "outer 128² c128 1x1")]
    [TestCase(128, Batch * 128 * 128, 9 * 128, GemmVariant.Narrow, GemmVariant.Narrow, TestName = "outer 128² c128 3x3")]
    [TestCase(256, Batch * 64 * 64, 256, GemmVariant.M64BK32, GemmVariant.Narrow, TestName = "inner 64² c256 1x1: sm_90 has a measured k256 entry")]
    [TestCase(256, Batch * 64 * 64, 9 * 256, GemmVariant.Wide, GemmVariant.Wide, TestName = "inner 64² c256 3x3")]
    [TestCase(512, Batch * 32 * 32, 512, GemmVariant.M64BK32, GemmVariant.M64BK32, TestName = "inner 32² c512 1x1")]
    [TestCase(512, 512, Batch * 32 * 32, GemmVariant.Wide, GemmVariant.Wide, TestName = "inner 32² c512 weight gradient: 16 tiles, K 8192")]
    [TestCase(768, Batch * 16 * 16, 768, GemmVariant.Narrow, GemmVariant.Narrow, TestName = "inner 16² c768 1x1: K 768 takes the 128x128 tile")]
    [TestCase(768, Batch * 16 * 16, 9 * 768, GemmVariant.Wide, GemmVariant.Wide, TestName = "inner 16² c768 3x3")]
    public void UNetShapeGetsItsVariant(int m, int n, int k, string heuristic, string committedSm90)
    {
        Assert.That(UNetGemms(), Does.Contain((m, n, k)), $"{m}x{n}x{k} is not a GEMM of imagenet-64-256 at batch {Batch}");
        long tiles = ShapeClass.GemmTiles(m, n);
        var none = TuningTable.Empty("none");
        var measured = TuningTable.From("short-k.json", [(("sm_90", TuningTable.GemmOp, ShapeClass.Gemm(k, tiles)), GemmVariant.BK32)]);
        TestContext.Out.WriteLine($"{m}x{n}x{k}: class {ShapeClass.Gemm(k, tiles)}, {tiles} tiles; no table {none.Gemm("sm_90", k, tiles)}, " +
            $"committed sm_90 {TuningTable.Committed.Gemm("sm_90", k, tiles)}, entry {measured.Gemm("sm_90", k, tiles)}");
        Assert.That(none.Gemm("sm_90", k, tiles), Is.EqualTo(heuristic).And.EqualTo(TuningHeuristics.Gemm(k, tiles)), "no entry: the heuristic");
        Assert.That(none.Gemm(null, k, tiles), Is.EqualTo(heuristic), "no GPU architecture: the heuristic");
        Assert.That(TuningTable.Committed.Gemm("sm_90", k, tiles), Is.EqualTo(committedSm90), "the committed sm_90 table");
        Assert.That(measured.Gemm("sm_90", k, tiles), Is.EqualTo(GemmVariant.BK32), "an entry for the class wins over the heuristic");
        Assert.That(measured.Gemm("sm_89", k, tiles), Is.EqualTo(heuristic), "another GPU's entry does not apply");
    }

    [Test]
    public void ShortKNeedsManyTiles()
    {
        Assert.That(TuningHeuristics.Gemm(TuningHeuristics.SmallKMaxK, ShapeClass.FewTiles + 1), Is.EqualTo(GemmVariant.M64BK32));
        Assert.That(TuningHeuristics.Gemm(TuningHeuristics.SmallKMaxK + 1, 1000), Is.EqualTo(GemmVariant.Narrow), "past the bound: the K rule");
        Assert.That(TuningHeuristics.Gemm(64, ShapeClass.FewTiles), Is.EqualTo(GemmVariant.Narrow), "few tiles: the K rule");
        Assert.That(ShapeClass.GemmTiles(129, 257, 3), Is.EqualTo(2 * 3 * 3));
        Assert.That(TuningTable.Variants[TuningTable.GemmOp], Does.Contain(GemmVariant.BK32).And.Contain(GemmVariant.M64BK32));
    }

    /// <summary>Every (M, N, K) above for each UNet level of the config: outer UNet at 256², inner at 64².</summary>
    static HashSet<(int, int, int)> UNetGemms()
    {
        var cfg = ModelTestUtil.LoadConfig("imagenet-64-256.json");
        var nest = cfg.Nested!;
        var set = new HashSet<(int, int, int)>();
        foreach (var (unet, size) in new[] { (nest.Outer, cfg.ImageSize), (nest.InnerUnet!, cfg.ImageSize / nest.NestRatio) })
            for (int level = 0; level < unet.Levels; level++)
            {
                int r = size >> level, c = unet.ResolutionChannels[level], tokens = Batch * r * r;
                set.Add((c, tokens, c));
                set.Add((c, tokens, 9 * c));
                set.Add((c, c, tokens));
            }
        return set;
    }
}
