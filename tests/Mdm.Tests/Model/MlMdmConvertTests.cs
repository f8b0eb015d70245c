using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Checkpoints;
using Mdm.Model.Config;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Training;

namespace Mdm.Tests.Model;

/// <summary>
/// <c>convert</c> field by field against ml-mdm's config semantics, on the golden YAMLs (whose converted models load
/// ml-mdm's weights strictly in <see cref="MlMdmGoldenTests"/>) and edits of them: what is converted, what is refused
/// (one message naming the field and the value), and what is accepted with a note.
/// </summary>
public class MlMdmConvertTests
{
    static string Golden(string name) => File.ReadAllText(MlMdmGoldenTests.GoldenPath(name + ".yaml"));

    static string Edit(string yaml, string from, string to)
    {
        Assert.That(yaml, Does.Contain(from), "the edit's anchor");
        return yaml.Replace(from, to);
    }

    static (RunConfig Run, IReadOnlyList<string> Notes) Convert(string yaml)
    {
        var json = MlMdmYaml.ToJson(yaml, "golden.yaml", out var notes);
        return (RunConfig.Parse(json, "converted"), notes);
    }

    [Test]
    public void TextWidthAtTheTopReachesTheInnermostUnetWithItsLmHeadAndNoMidBlocks()
    {
        var (run, _) = Convert(Golden("nested2-text"));
        var m = run.Model;
        var inner = m.Nested!.InnerUnet!;
        Assert.Multiple(() =>
        {
            Assert.That(inner.ConditioningFeatureDim, Is.EqualTo(48), "ml-mdm copies the top level's conditioning_feature_dim inward");
            Assert.That(inner.ConditioningFeatureProjDim, Is.EqualTo(32));
            Assert.That(inner.NumLmHeadLayers, Is.EqualTo(1));
            Assert.That(inner.SkipMidBlocks, Is.True, "an innermost skip_mid_blocks is kept");
            Assert.That(inner.AttentionGroups, Is.EqualTo(32), "ml-mdm's attention norms use 32 groups");
            Assert.That(inner.Groups, Is.EqualTo(8));
            Assert.That(m.Nested.InterpConditioning, Is.True);
            Assert.That(run.Diffusion.UseDoubleLoss, Is.True);
        });
    }

    [Test]
    public void TemporalFieldsAreConverted()
    {
        var (run, notes) = Convert(Golden("video-temporal"));
        var u = run.Model.Unet!;
        Assert.That(u.NumTemporalAttentionLayers, Is.EqualTo(new[] { 1 }));
        Assert.That(u.TemporalPositionalEncoding, Is.True);
        Assert.That(run.Model.Frames, Is.EqualTo(2));
        Assert.That(notes, Has.Some.Contains("model.frames"), "the clip length is not in ml-mdm's config: said so");
    }

    [Test]
    public void AbsentDiffusionFieldsTakeMlMdmsDefaults()
    {
        var yaml = Edit(Golden("video-temporal"), "    loss_target_type: DDPM\n", "");
        yaml = Edit(yaml, "    num_diffusion_steps: 1000\n", "");
        var (run, _) = Convert(yaml);
        Assert.That(run.Diffusion.NumDiffusionSteps, Is.EqualTo(32), "SamplerConfig.num_diffusion_steps defaults to 32");
        Assert.That(run.Diffusion.LossTargetType, Is.EqualTo(Mdm.Model.Diffusion.PredictionType.V), "loss_target_type defaults to prediction_type");
        Assert.That(run.Diffusion.ScheduleShifted, Is.False);
    }

    [Test]
    public void ResnetDropoutIsConvertedPerLevelAndTheWeightsStillLoadStrictly()
    {
        var yaml = Edit(Golden("nested2-text"), "resnet_config: {num_groups_norm: 8, dropout: 0.0}", "resnet_config: {num_groups_norm: 8, dropout: 0.1}");
        yaml = Edit(yaml, "resnet_config: {num_groups_norm: 8, use_attention_ffn: true}", "resnet_config: {num_groups_norm: 8, use_attention_ffn: true, dropout: 0.25}");
        var (run, _) = Convert(yaml);
        Assert.That(run.Model.Nested!.Outer.Dropout, Is.EqualTo(0.1f));
        Assert.That(run.Model.Nested.InnerUnet!.Dropout, Is.EqualTo(0.25f));
        var model = ModelFactory.Create(run.Model, TestBackends.Get(BackendKind.Cpu));
        try
        {
            var resnets = ResNets(model).ToList();
            Assert.That(resnets.Where(r => r.Dropout == 0.1f).Count() + resnets.Where(r => r.Dropout == 0.25f).Count(), Is.EqualTo(resnets.Count));
            Assert.That(ResNets(((NestedUNet)model).Inner), Is.All.Property(nameof(ResNet.Dropout)).EqualTo(0.25f));
            using var file = SafeTensorsFile.Open(MlMdmGoldenTests.GoldenPath("nested2-text.safetensors"));
            var report = StateDict.Load(model, file, new StateDictLoadOptions { SourcePrefix = "param." });
            Assert.That(report.IsComplete, Is.True, "ml-mdm's weights load strictly into the model with dropout");
        }
        finally { model.DisposeParameters(); }
    }

    static IEnumerable<ResNet> ResNets(Mdm.Autograd.Nn.Module m) =>
        (m is ResNet r ? [r] : Enumerable.Empty<ResNet>()).Concat(m.NamedChildren().SelectMany(c => ResNets(c.Value)));

    [TestCase("nested2-text", "resnet_config: {num_groups_norm: 8, dropout: 0.0}", "resnet_config: {num_groups_norm: 8, dropout: 1.5}", "unet_config.resnet_config.dropout: 1.5")]
    [TestCase("nested2-text", "  interp_conditioning: true", "  interp_conditioning: true\n  freeze_inner_unet: true", "unet_config.freeze_inner_unet: true")]
    [TestCase("nested2-text", "  interp_conditioning: true", "  interp_conditioning: true\n  temporal_spatial_ds: true", "unet_config.temporal_spatial_ds: true")]
    [TestCase("nested2-text", "  skip_mid_blocks: true\n  interp", "  skip_mid_blocks: false\n  interp", "unet_config.skip_mid_blocks: false")]
    [TestCase("nested2-text", "  skip_cond_emb: true", "  skip_cond_emb: false", "unet_config.skip_cond_emb: false")]
    [TestCase("nested2-text", "  interp_conditioning: true", "  interp_conditioning: true\n  num_lm_head_layers: 2", "unet_config.num_lm_head_layers: 2")]
    [TestCase("nested2-text", "  interp_conditioning: true", "  interp_conditioning: true\n  conditioning_feature_proj_dim: 16", "unet_config.conditioning_feature_proj_dim: 16")]
    [TestCase("nested2-text", "    nesting: true", "    nesting: false", "unet_config.inner_config.nesting: false")]
    [TestCase("nested2-text", "  interp_conditioning: true", "  interp_conditioning: true\n  colour: red", "unet_config.colour")]
    [TestCase("nested2-text", "    schedule_shifted: true", "    schedule_shifted: true\n    rescale_schedule: 2.0", "diffusion_config.sampler_config.rescale_schedule: 2")]
    [TestCase("nested2-text", "    schedule_shifted: true", "    schedule_shifted: true\n    rescale_signal: 4", "diffusion_config.sampler_config.rescale_signal: 4")]
    [TestCase("nested2-text", "    schedule_shifted: true", "    schedule_shifted: true\n    beta_end: 0.03", "diffusion_config.sampler_config.beta_end: 0.03")]
    [TestCase("nested2-text", "    schedule_shifted: true", "    schedule_shifted: true\n    threshold_function: SOFT", "diffusion_config.sampler_config.threshold_function: SOFT")]
    [TestCase("nested2-text", "  use_vdm_loss_weights: false", "  use_vdm_loss_weights: true", "diffusion_config.use_vdm_loss_weights: true")]
    [TestCase("nested2-text", "  use_vdm_loss_weights: false\n", "", "diffusion_config.use_vdm_loss_weights: absent")]
    [TestCase("nested2-text", "  no_use_residual: true", "  no_use_residual: false", "diffusion_config.no_use_residual: false")]
    [TestCase("nested2-text", "  no_use_residual: true", "  no_use_residual: true\n  model_output_scale: 1.5", "diffusion_config.model_output_scale: 1.5")]
    [TestCase("video-temporal", "  use_vdm_loss_weights: false", "  use_vdm_loss_weights: false\n  use_double_loss: true", "diffusion_config.use_double_loss")]
    public void UnsupportedValuesAreRefusedNamingFieldAndValue(string golden, string from, string to, string message)
    {
        var yaml = Edit(Golden(golden), from, to);
        var e = Assert.Throws<UsageException>(() => Convert(yaml))!;
        Assert.That(e.Message, Does.Contain(message));
        Assert.That(e.Message, Does.Not.Contain("\n"), "one line");
    }

    [TestCase("    schedule_shifted: true", "    schedule_shifted: true\n    reproject_signal: true", "reproject_signal: true has no effect")]
    [TestCase("    schedule_shifted: true", "    schedule_shifted: true\n    threshold_function: DYNAMIC_IF", "sample --threshold deepfloyd")]
    [TestCase("  no_use_residual: true", "  no_use_residual: true\n  mid_downsample: true", "mid_downsample: true has no effect")]
    [TestCase("    conditioning_feature_dim: -1", "    conditioning_feature_dim: 96", "inner_config.conditioning_feature_dim: 96 is replaced by the top level's 48")]
    [TestCase("  interp_conditioning: true", "  interp_conditioning: true\n  initialize_inner_with_pretrained: inner.pth", "initialize_inner_with_pretrained: inner.pth")]
    [TestCase("resnet_config: {num_groups_norm: 8, dropout: 0.0}", "resnet_config: {num_groups_norm: 8, num_channels: 12}", "num_channels: 12 is ignored")]
    public void FieldsWithoutEffectAreAcceptedWithANote(string from, string to, string note)
    {
        var (run, notes) = Convert(Edit(Golden("nested2-text"), from, to));
        Assert.That(notes, Has.Some.Contains(note));
        Assert.That(run.Model.Nested!.InnerUnet!.ConditioningFeatureDim, Is.EqualTo(48));
        var json = MlMdmYaml.ToJson(Edit(Golden("nested2-text"), from, to), "golden.yaml");
        Assert.That(json, Does.Contain("// note: "), "the notes travel with the converted file");
    }

    [Test]
    public void AttentionGroupsFollowMlMdmAndCanBeChanged()
    {
        var inner = Convert(Golden("nested3-unmasked")).Run.Model.Nested!.InnerNested!.InnerUnet!;
        Assert.That((inner.Groups, inner.AttentionGroups), Is.EqualTo((4, 32)));
        var json = """{"model": {"imageSize": 8, "unet": {"resolutionChannels": [16, 24], "attentionLevels": [1], "groups": 8, "attentionGroups": 8}}}""";
        Assert.That(ModelConfig.Parse(json).Unet!.AttentionGroups, Is.EqualTo(8));
        var bad = json.Replace("\"attentionGroups\": 8", "\"attentionGroups\": 32");
        Assert.That(() => ModelConfig.Parse(bad), Throws.ArgumentException.With.Message.Contains("model.unet.resolutionChannels[1]: 24 channels at an attention level are not divisible by attentionGroups 32"));
    }
}
