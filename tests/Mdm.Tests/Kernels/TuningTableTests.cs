using Mdm.Kernels.Gpu.TensorCore;
using Mdm.Kernels.Gpu.Tuning;

namespace Mdm.Tests.Kernels;

/// <summary>The tuning table: parsing, lookup by GPU and shape class, the fallback heuristics, and one clear line
/// naming the file and entry for a malformed table.</summary>
public class TuningTableTests
{
    const string Table = """
        {
          "version": 1,
          "gpus": {
            "sm_90": {
              "source": "test",
              "gemm": { "k256": "narrow", "k4096": "narrow" },
              "attention_forward": { "d64-n1024": "tensor-core" },
              "attention_backward": { "d64-n1024": "simt" },
              "conv": { "forward-3x3-k4096": "implicit-wide", "wgrad-3x3-k65536": "implicit-narrow", "dgrad-1x1-k256": "im2col" }
            },
            "sm_80": { "gemm": { "k256": "wide" } }
          }
        }
        """;

    [Test]
    public void ParsesEveryEntry()
    {
        var t = TuningTable.Parse(Table, "t.json");
        Assert.That(t.Entries, Has.Count.EqualTo(8));
        Assert.That(t.Find("sm_90", TuningTable.ConvOp, "forward-3x3-k4096"), Is.EqualTo(ConvVariant.ImplicitWide));
        Assert.That(t.Find("sm_90", TuningTable.GemmOp, "k4096"), Is.EqualTo(GemmVariant.Narrow));
        Assert.That(t.Find("sm_80", TuningTable.GemmOp, "k256"), Is.EqualTo(GemmVariant.Wide));
        Assert.That(t.Find("sm_90", TuningTable.AttentionForwardOp, "d64-n1024"), Is.EqualTo(AttentionVariant.TensorCore));
    }

    [Test]
    public void LookupUsesTheShapeClassOfTheShape()
    {
        var t = TuningTable.Parse(Table, "t.json");
        // K = 3000 falls in k4096, where the table says narrow although the K rule would say wide.
        Assert.That(t.GemmWideWarps("sm_90", 3000), Is.False);
        Assert.That(t.GemmWideWarps("sm_80", 200), Is.True);
        Assert.That(t.AttentionOnTensorCores("sm_90", backward: false, n: 777, headDim: 64), Is.True);
        Assert.That(t.AttentionOnTensorCores("sm_90", backward: true, n: 777, headDim: 64), Is.False);
        // 256 channels × 3×3 = 2304 falls in k4096; 16 × 64² = 65536 output pixels in k65536.
        Assert.That(t.Conv("sm_90", ConvPass.Forward, 3, 256 * 9), Is.EqualTo(ConvVariant.ImplicitWide));
        Assert.That(t.Conv("sm_90", ConvPass.Wgrad, 3, 16 * 64 * 64), Is.EqualTo(ConvVariant.ImplicitNarrow));
        Assert.That(t.Conv("sm_90", ConvPass.Dgrad, 1, 200), Is.EqualTo(ConvVariant.Im2Col));
    }

    [Test]
    public void UnknownGpuOrShapeFallsBackToTheHeuristics()
    {
        var t = TuningTable.Parse(Table, "t.json");
        Assert.That(t.GemmWideWarps("sm_75", 4096), Is.EqualTo(TuningHeuristics.GemmWideWarps(4096)).And.True);
        Assert.That(t.GemmWideWarps("sm_90", 1000), Is.False, "k1024 has no entry: K < 2048 gives 8 warps");
        Assert.That(t.GemmWideWarps(null, 2048), Is.True, "no GPU (CPU accelerator): the K rule");
        Assert.That(t.AttentionOnTensorCores("sm_90", false, 777, 128), Is.False, "unmeasured head dim: SIMT");
        Assert.That(t.AttentionOnTensorCores("sm_75", false, 777, 64), Is.False);
        Assert.That(TuningHeuristics.Conv, Is.EqualTo(ConvVariant.Im2Col), "unmeasured convolutions keep the im2col path");
        Assert.That(t.Conv("sm_75", ConvPass.Forward, 3, 2304), Is.EqualTo(TuningHeuristics.Conv));
        Assert.That(t.Conv("sm_90", ConvPass.Dgrad, 3, 2304), Is.EqualTo(TuningHeuristics.Conv), "dgrad-3x3-k4096 has no entry");
        Assert.That(t.Conv(null, ConvPass.Forward, 3, 2304), Is.EqualTo(TuningHeuristics.Conv));
    }

    [Test]
    public void FewTileGemmsHaveTheirOwnClassAndSplitK()
    {
        var t = TuningTable.Parse("""
            { "version": 1, "gpus": { "sm_90": { "gemm": { "k16384-few": "split-k", "k16384": "wide" } } } }
            """, "t.json");
        Assert.That(ShapeClass.Gemm(10000, ShapeClass.FewTiles), Is.EqualTo("k16384-few"));
        Assert.That(ShapeClass.Gemm(10000, ShapeClass.FewTiles + 1), Is.EqualTo("k16384"));
        Assert.That(t.Gemm("sm_90", 10000, 16), Is.EqualTo(GemmVariant.SplitK));
        Assert.That(t.Gemm("sm_90", 10000, 500), Is.EqualTo(GemmVariant.Wide), "many tiles: the k class");
        Assert.That(t.Gemm("sm_90", 300, 4), Is.EqualTo(TuningHeuristics.Gemm(300)).And.EqualTo(GemmVariant.Narrow), "no k512 entry: the K rule");
        Assert.That(t.Gemm("sm_75", 10000, 4), Is.EqualTo(GemmVariant.Wide), "unknown GPU: the K rule, never split-K unmeasured");
        foreach (var (shape, valid) in new[] { ("k4096-few", true), ("k4000-few", false), ("k4096-many", false), ("-few", false), ("k4096-few-few", false) })
            Assert.That(ShapeClass.IsValid(TuningTable.GemmOp, shape), Is.EqualTo(valid), shape);
    }

    [Test]
    public void SplitKFillsTheMultiprocessorsWithLongEnoughPieces()
    {
        Assert.That(TuningHeuristics.GemmSplits(tiles: 1, slices: 256, multiprocessors: 132), Is.EqualTo(TuningHeuristics.MaxSplits));
        Assert.That(TuningHeuristics.GemmSplits(16, 256, 132), Is.EqualTo(17), "two groups per multiprocessor: ⌈264 / 16⌉");
        Assert.That(TuningHeuristics.GemmSplits(16, 16, 132), Is.EqualTo(16 / TuningHeuristics.MinSlicesPerSplit), "pieces of at least 4 slices");
        Assert.That(TuningHeuristics.GemmSplits(132, 1024, 132), Is.EqualTo(1), "enough tiles already");
        Assert.That(TuningHeuristics.GemmSplits(4, 3, 132), Is.EqualTo(1), "too short to split");
    }

    [Test]
    public void ShapeClassesRoundUpToPowersOfTwo()
    {
        Assert.That(ShapeClass.Gemm(256), Is.EqualTo("k256"));
        Assert.That(ShapeClass.Gemm(257), Is.EqualTo("k512"));
        Assert.That(ShapeClass.Gemm(1), Is.EqualTo("k1"));
        Assert.That(ShapeClass.Attention(1025, 96), Is.EqualTo("d96-n2048"));
        Assert.That(ShapeClass.IsValid(TuningTable.GemmOp, "k768"), Is.False);
        Assert.That(ShapeClass.IsValid(TuningTable.AttentionForwardOp, "d64-n1024"), Is.True);
        Assert.That(ShapeClass.Conv(ConvPass.Forward, 3, 2304), Is.EqualTo("forward-3x3-k4096"));
        Assert.That(ShapeClass.Conv(ConvPass.Wgrad, 1, 81), Is.EqualTo("wgrad-1x1-k128"));
        Assert.That(ShapeClass.IsValid(TuningTable.ConvOp, "dgrad-3x3-k512"), Is.True);
        foreach (var bad in new[] { "dgrad-3x3-k500", "Forward-3x3-k512", "fwd-3x3-k512", "forward-3x1-k512", "forward-3x3", "forward-3x3-512" })
            Assert.That(ShapeClass.IsValid(TuningTable.ConvOp, bad), Is.False, bad);
    }

    [Test]
    public void CommittedTableParses()
    {
        var t = TuningTable.Committed;
        Assert.That(t.Source, Is.EqualTo("tuning.json"));
        foreach (var ((_, op, shape), variant) in t.Entries)
        {
            Assert.That(TuningTable.Variants[op], Does.Contain(variant));
            Assert.That(ShapeClass.IsValid(op, shape), Is.True, shape);
        }
    }

    [Test]
    public void WrittenTableReadsBack()
    {
        var t = TuningTable.Parse(Table, "t.json");
        var back = TuningTable.Parse(t.ToJson(), "back.json");
        Assert.That(back.Entries, Is.EquivalentTo(t.Entries));
        var built = TuningTable.From("new.json", [(("sm_90", TuningTable.GemmOp, "k512"), GemmVariant.Wide)]);
        Assert.That(built.Find("sm_90", TuningTable.GemmOp, "k512"), Is.EqualTo(GemmVariant.Wide));
    }

    static IEnumerable<TestCaseData> Malformed()
    {
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": {", "t.json: not valid JSON").SetArgDisplayNames("truncated");
        yield return new TestCaseData("{ \"version\": 2, \"gpus\": {} }", "t.json: version: expected 1").SetArgDisplayNames("version");
        yield return new TestCaseData("{ \"version\": 1 }", "t.json: gpus:").SetArgDisplayNames("no-gpus");
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": { \"h100\": {} } }", "t.json: gpus.h100: architecture").SetArgDisplayNames("architecture");
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": { \"sm_90\": { \"fft\": {} } } }", "t.json: gpus.sm_90.fft: unknown op").SetArgDisplayNames("op");
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": { \"sm_90\": { \"conv\": { \"forward-3x3-k1000\": \"im2col\" } } } }", "t.json: gpus.sm_90.conv.forward-3x3-k1000: not a shape class of conv (expected <forward|dgrad|wgrad>-<n>x<n>-k<power of two>)").SetArgDisplayNames("conv-shape");
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": { \"sm_90\": { \"conv\": { \"forward-3x3-k1024\": \"wide\" } } } }", "t.json: gpus.sm_90.conv.forward-3x3-k1024: unknown variant \"wide\" (expected im2col or implicit-narrow or implicit-wide)").SetArgDisplayNames("conv-variant");
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": { \"sm_90\": { \"gemm\": { \"k768\": \"wide\" } } } }", "t.json: gpus.sm_90.gemm.k768: not a shape class").SetArgDisplayNames("shape");
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": { \"sm_90\": { \"gemm\": { \"k256\": \"fast\" } } } }", "t.json: gpus.sm_90.gemm.k256: unknown variant \"fast\"").SetArgDisplayNames("variant");
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": { \"sm_90\": { \"attention_forward\": { \"d64-n1024\": 1 } } } }", "t.json: gpus.sm_90.attention_forward.d64-n1024: unknown variant 1").SetArgDisplayNames("variant-type");
    }

    [TestCaseSource(nameof(Malformed))]
    public void MalformedTableNamesFileAndEntry(string json, string expected)
    {
        var e = Assert.Throws<TuningTableException>(() => TuningTable.Parse(json, "t.json"))!;
        Assert.That(e.Message, Does.StartWith(expected));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void MissingFileIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mdm-missing-{Guid.NewGuid():N}.json");
        var e = Assert.Throws<TuningTableException>(() => TuningTable.Load(path))!;
        Assert.That(e.Message, Is.EqualTo($"{path}: tuning table not found"));
    }
}
