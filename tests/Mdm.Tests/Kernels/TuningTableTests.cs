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
              "attention_backward": { "d64-n1024": "simt" }
            },
            "sm_80": { "gemm": { "k256": "wide" } }
          }
        }
        """;

    [Test]
    public void ParsesEveryEntry()
    {
        var t = TuningTable.Parse(Table, "t.json");
        Assert.That(t.Entries, Has.Count.EqualTo(5));
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
        yield return new TestCaseData("{ \"version\": 1, \"gpus\": { \"sm_90\": { \"conv\": {} } } }", "t.json: gpus.sm_90.conv: unknown op").SetArgDisplayNames("op");
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
