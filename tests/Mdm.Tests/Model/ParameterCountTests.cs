using System.Text.RegularExpressions;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Tests.Harness;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Model;

/// <summary>Parameter counts of the shipped configs (without allocating), and ml-mdm state-dict names.</summary>
public class ParameterCountTests
{
    [TestCase("t2i-64.json", 461.4e6)]
    [TestCase("t2i-64-256.json", 476.6e6)]
    [TestCase("t2i-64-256-1024.json", 481.0e6)]
    public void PaperConfigsHaveThePaperParameterCounts(string file, double expected)
    {
        var count = ModelFactory.CountParameters(LoadConfig(file));
        TestContext.Out.WriteLine($"{file}:\n{count.Format()}");
        Assert.That(count.Total, Is.EqualTo(expected).Within(0.5).Percent,
            $"{file}: {count.Total:N0} parameters, expected ≈ {expected / 1e6:F1} M\n{count.Format()}");
    }

    [Test]
    public void SixtyFourCoreBreakdownMatchesTheReference()
    {
        var blocks = ModelFactory.CountParameters(LoadConfig("t2i-64.json")).ByBlock.ToDictionary(b => b.Block, b => b.Count);
        // mdm-reference §2.6: time MLP 1.31 M, cond_emb 2.10 M, lm_proj 4.20 M, micro 1.31 M, mid 34.6 M.
        Assert.Multiple(() =>
        {
            Assert.That((blocks["temb_layer1"] + blocks["temb_layer2"]) / 1e6, Is.EqualTo(1.31).Within(0.01), "time MLP");
            Assert.That(blocks["cond_emb"] / 1e6, Is.EqualTo(2.10).Within(0.01), "cond_emb");
            Assert.That(blocks["lm_proj"] / 1e6, Is.EqualTo(4.20).Within(0.01), "lm_proj");
            Assert.That(blocks["cond_layers"] / 1e6, Is.EqualTo(1.31).Within(0.01), "micro-conditioning");
            Assert.That((blocks["mid_blocks.0"] + blocks["mid_blocks.1"]) / 1e6, Is.EqualTo(34.6).Within(0.1), "mid blocks");
            long down = blocks.Where(b => b.Key.StartsWith("down_blocks.")).Sum(b => b.Value);
            long up = blocks.Where(b => b.Key.StartsWith("up_blocks.")).Sum(b => b.Value);
            Assert.That(down / 1e6, Is.EqualTo(152.8).Within(0.2), "down path");
            Assert.That(up / 1e6, Is.EqualTo(265.0).Within(0.3), "up path");
        });
    }

    [TestCase("imagenet-64.json")]
    [TestCase("imagenet-64-256.json")]
    [TestCase("cpu-demo.json")]
    [TestCase("tiny-test.json")]
    public void OtherConfigsCount(string file)
    {
        var config = LoadConfig(file);
        var count = ModelFactory.CountParameters(config);
        TestContext.Out.WriteLine($"{file}:\n{count.Format()}");
        Assert.That(count.Total, Is.GreaterThan(0));
        if (file.StartsWith("imagenet"))
            Assert.That(count.Parameters.Single(p => p.Name.EndsWith("class_emb.weight")).Shape, Is.EqualTo(new[] { 1024, 1001 }), "1000 classes + null row");
        if (file == "cpu-demo.json") Assert.That(count.Total, Is.LessThan(5_000_000), "the CPU demo must stay small");
    }

    [Test]
    public void CountingSpecsEqualTheAllocatedModelsParameters()
    {
        var config = LoadConfig("tiny-test.json");
        var counted = ModelFactory.CountParameters(config).Parameters;
        var model = ModelFactory.Create(config, TestBackends.Get(BackendKind.Cpu), seed: 1);
        try
        {
            var allocated = model.NamedParameters().Select(p => (p.Name, Shape: string.Join("x", p.Value.Shape))).ToList();
            var specs = counted.Select(p => (p.Name, Shape: string.Join("x", p.Shape))).ToList();
            Assert.That(specs, Is.EqualTo(allocated), "the shapes-only build must declare exactly the allocated parameters");
            Assert.That(model.ParameterCount, Is.EqualTo(counted.Sum(p => p.Numel)));
        }
        finally { model.DisposeParameters(); }
    }

    // ml-mdm state-dict key patterns (mdm-reference §2.7), plus class_emb for the class-conditional path.
    static readonly Regex[] KeyPatterns =
    [
        new(@"^(temb_layer[12]|cond_emb|lm_proj|class_emb)\.(weight|bias)$"),
        new(@"^cond_layers\.[a-z_]+\.[01]\.(weight|bias)$"),
        new(@"^(conv_in|norm_out|conv_out|in_adapter|out_adapter)\.(weight|bias)$"),
        new(@"^(down|up)_blocks\.\d+\.resnets\.\d+\.(norm1|conv1|time_layer|norm2|conv2|conv3)\.(weight|bias)$"),
        new(@"^(down|up)_blocks\.\d+\.attn\.\d+\.(norm|qkv|norm_cond|kv_cond|proj_out|ffn\.0|ffn\.1|ffn\.3)\.(weight|bias)$"),
        new(@"^(down|up)_blocks\.\d+\.resample\.(weight|bias)$"),
        new(@"^mid_blocks\.0\.resnets\.0\.(norm1|conv1|time_layer|norm2|conv2)\.(weight|bias)$"),
        new(@"^mid_blocks\.0\.attn\.0\.(norm|qkv|norm_cond|kv_cond|proj_out|ffn\.0|ffn\.1|ffn\.3)\.(weight|bias)$"),
        new(@"^mid_blocks\.1\.resnets\.0\.(norm1|conv1|time_layer|norm2|conv2)\.(weight|bias)$"),
    ];

    [Test]
    public void NamesFollowMlMdmStateDictKeys()
    {
        var names = ModelFactory.CountParameters(LoadConfig("tiny-test.json")).Parameters.Select(p => p.Name).ToList();
        foreach (var name in names)
        {
            var local = Regex.Replace(name, @"^(inner_unet\.)+", "");
            Assert.That(KeyPatterns.Any(r => r.IsMatch(local)), $"'{name}' matches no ml-mdm key pattern");
        }
        string[] expected =
        [
            "temb_layer1.weight", "cond_layers.scale.1.bias", "conv_in.weight",
            "down_blocks.0.resnets.0.conv1.weight", "down_blocks.0.resample.weight",
            "down_blocks.1.resnets.0.conv3.weight", "down_blocks.1.attn.0.qkv.weight", "down_blocks.1.attn.0.kv_cond.weight",
            "up_blocks.0.resnets.1.conv3.bias", "up_blocks.0.resample.weight", "up_blocks.1.resnets.1.time_layer.weight",
            "norm_out.weight", "conv_out.bias", "in_adapter.weight", "out_adapter.bias",
            "inner_unet.cond_emb.weight", "inner_unet.lm_proj.weight", "inner_unet.cond_layers.scale.0.weight",
            "inner_unet.mid_blocks.0.attn.0.ffn.3.weight", "inner_unet.mid_blocks.1.resnets.0.conv2.weight",
            "inner_unet.down_blocks.1.attn.0.norm_cond.weight", "inner_unet.up_blocks.0.attn.1.proj_out.weight",
        ];
        Assert.That(names, Is.SupersetOf(expected));
        Assert.That(names, Has.None.StartWith("mid_blocks"), "an outer level has no mid block");
        Assert.That(names, Has.None.StartWith("cond_emb").And.None.StartWith("lm_proj"), "the outer level uses the inner conditioning");
        Assert.That(names, Is.Unique);
    }
}
