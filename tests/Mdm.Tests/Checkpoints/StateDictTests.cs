using Mdm.Autograd.Nn;
using Mdm.Kernels;
using Mdm.Model.Checkpoints;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Checkpoints;

/// <summary>Saving a module's parameters and loading them back by name, on every backend (loading copies host → device).</summary>
[BackendFixtures]
public class StateDictTests(BackendKind kind) : KernelFixture(kind)
{
    static Dictionary<string, float[]> Values(Module m) => m.NamedParameters().ToDictionary(p => p.Name, p => p.Value.Data.ToArray());

    static SafeTensorsFile Save(Module m, SafeTensorsDType dtype = SafeTensorsDType.F32, string prefix = "") =>
        SafeTensorsBytes.Open(StateDict.Add(new SafeTensorsWriter(), m, prefix, dtype).ToArray(), "model.safetensors");

    static void AssertSame(Dictionary<string, float[]> expected, Module actual, string what, string targetPrefix = "")
    {
        var got = Values(actual);
        foreach (var (name, values) in expected)
            Assert.That(got[targetPrefix + name], Is.EqualTo(values), $"{what}: parameter '{targetPrefix + name}'");
    }

    [Test]
    public void F32RoundTripIsExactAndKeyedByModuleNames()
    {
        var source = new TinyUNet(B, seed: 1);
        var target = new TinyUNet(B, seed: 2);
        try
        {
            using var file = Save(source);
            Assert.That(file.Names, Is.EquivalentTo(source.NamedParameters().Select(p => p.Name)));
            Assert.That(file.Names, Does.Contain("block.proj.weight").And.Contain("conv_in.bias"));
            Assert.That(file.Entry("conv_in.weight").Shape, Is.EqualTo(new long[] { 5, 3, 3, 3 }));
            Assert.That(Values(target)["conv_in.weight"], Is.Not.EqualTo(Values(source)["conv_in.weight"]), "different seeds differ");
            var before = target.NamedParameters().Select(p => p.Value.Data).ToList();
            var report = StateDict.Load(target, file);
            Assert.That(report.IsComplete, report.ToString());
            Assert.That(report.Loaded, Has.Count.EqualTo(7));
            AssertSame(Values(source), target, "after load");
            Assert.That(target.NamedParameters().Select(p => p.Value.Data), Is.EqualTo(before), "loading copies into the existing tensors");
        }
        finally { source.DisposeParameters(); target.DisposeParameters(); }
    }

    [Test]
    public void BF16FileRoundsWhileMasterWeightsStayF32()
    {
        var source = new TinyUNet(B, seed: 3);
        var target = new TinyUNet(B, seed: 4);
        try
        {
            var original = Values(source);
            using var file = Save(source, SafeTensorsDType.BF16);
            Assert.That(file.Entries.Select(e => e.DType), Is.All.EqualTo(SafeTensorsDType.BF16));
            Assert.That(source.Parameters().Select(p => p.Data.DType), Is.All.EqualTo(DType.F32));
            AssertSame(original, source, "saving as BF16 leaves the source unchanged");
            StateDict.Load(target, file);
            foreach (var (name, values) in Values(target))
                Assert.That(values, Is.EqualTo(original[name].Select(v => BFloat16.ToFloat(BFloat16.FromFloat(v))).ToArray()), $"'{name}' is the BF16 rounding");
            Assert.That(target.Parameters().Select(p => p.Data.DType), Is.All.EqualTo(DType.F32));
        }
        finally { source.DisposeParameters(); target.DisposeParameters(); }
    }

    /// <summary>A file like the module's, but with one key missing, one extra and one of another shape.</summary>
    static SafeTensorsFile Damaged(Module m)
    {
        var w = new SafeTensorsWriter();
        foreach (var (name, p) in m.NamedParameters())
        {
            if (name == "block.out.weight") continue;
            if (name == "conv_out.bias") { w.AddF32(name, [2], [1f, 2f]); continue; }
            w.Add(name, p.Data);
        }
        w.AddF32("extra.scale", [3], [1f, 2f, 3f]);
        return SafeTensorsBytes.Open(w.ToArray(), "damaged.safetensors");
    }

    [Test]
    public void StrictLoadReportsEveryProblemAndLoadsNothing()
    {
        var source = new TinyUNet(B, seed: 5);
        var target = new TinyUNet(B, seed: 6);
        try
        {
            using var file = Damaged(source);
            var before = Values(target);
            var e = Assert.Throws<StateDictMismatchException>(() => StateDict.Load(target, file));
            Assert.That(e!.Message, Does.Contain("damaged.safetensors").And.Contain("nothing was loaded")
                .And.Contain("block.out.weight [2,4]").And.Contain("extra.scale F32 [3]").And.Contain("conv_out.bias: file F32 [2], model [1]"));
            Assert.That(e.Report.Missing, Is.EqualTo(new[] { "block.out.weight [2,4]" }));
            Assert.That(e.Report.Unexpected, Is.EqualTo(new[] { "extra.scale F32 [3]" }));
            Assert.That(e.Report.ShapeMismatches, Is.EqualTo(new[] { new ShapeMismatch("conv_out.bias", "F32 [2]", "[1]") }));
            AssertSame(before, target, "a failed strict load changes nothing");
        }
        finally { source.DisposeParameters(); target.DisposeParameters(); }
    }

    [Test]
    public void NonStrictLoadCopiesWhatMatchesAndReportsTheRest()
    {
        var source = new TinyUNet(B, seed: 7);
        var target = new TinyUNet(B, seed: 8);
        try
        {
            using var file = Damaged(source);
            var before = Values(target);
            var report = StateDict.Load(target, file, StateDictLoadOptions.NonStrict);
            Assert.That(report.IsComplete, Is.False);
            Assert.That((report.Missing.Count, report.Unexpected.Count, report.ShapeMismatches.Count, report.Loaded.Count), Is.EqualTo((1, 1, 1, 5)), report.ToString());
            Assert.That(report.ToString(), Does.Contain("1 missing from the file").And.Contain("1 shape mismatches"));
            var src = Values(source);
            var got = Values(target);
            foreach (var name in got.Keys)
            {
                bool skipped = name is "block.out.weight" or "conv_out.bias";
                Assert.That(got[name], Is.EqualTo(skipped ? before[name] : src[name]), $"'{name}' {(skipped ? "kept" : "loaded")}");
            }
        }
        finally { source.DisposeParameters(); target.DisposeParameters(); }
    }

    [Test]
    public void PrefixesMoveWeightsBetweenANestedModelAndItsInnerModel()
    {
        var nested = new TinyNested(B, seed: 9);
        var standalone = new TinyUNet(B, seed: 10);
        var freshNested = new TinyNested(B, seed: 11);
        try
        {
            // The nested model's inner level → a standalone model (keys "inner_unet.*" with the prefix stripped).
            using (var nestedFile = Save(nested))
            {
                var report = StateDict.Load(standalone, nestedFile, new() { SourcePrefix = "inner_unet." });
                Assert.That(report.IsComplete, report.ToString());
                AssertSame(Values(nested.Inner), standalone, "inner_unet.* → standalone");
            }
            // A previous stage's standalone file initialises the inner level of a new nested model; outer layers stay as they were.
            var outerBefore = Values(freshNested).Where(kv => !kv.Key.StartsWith("inner_unet.")).ToDictionary();
            using (var stageFile = Save(standalone))
            {
                var report = StateDict.Load(freshNested, stageFile, new() { TargetPrefix = "inner_unet." });
                Assert.That(report.IsComplete, report.ToString());
                Assert.That(report.Loaded, Has.Count.EqualTo(7));
            }
            AssertSame(Values(standalone), freshNested, "standalone → inner_unet.*", targetPrefix: "inner_unet.");
            AssertSame(outerBefore, freshNested, "outer layers untouched");
            // Without a prefix, the outer layers are missing from a stage file: a non-strict load reports them.
            using var again = Save(standalone, prefix: "inner_unet.");
            var partial = StateDict.Load(freshNested, again, StateDictLoadOptions.NonStrict);
            Assert.That(partial.Missing, Is.EquivalentTo(new[] { "in_adapter.weight [3,3,1,1]", "in_adapter.bias [3]", "embed.weight [3,6]", "embed.bias [3]" }));
            Assert.That(partial.Unexpected, Is.Empty);
        }
        finally { nested.DisposeParameters(); standalone.DisposeParameters(); freshNested.DisposeParameters(); }
    }
}
