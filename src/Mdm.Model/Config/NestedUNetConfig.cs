using System.Text.Json.Serialization;

namespace Mdm.Model.Config;

/// <summary>
/// One nesting level (ml-mdm's <c>NestedUNetConfig</c>): a shallow outer UNet at this level's resolution whose
/// bottleneck hosts an inner model (a UNet, or another nesting level) at resolution / 2^(L_outer − 1).
/// Exactly one of <see cref="InnerUnet"/> and <see cref="InnerNested"/> is set.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record NestedUNetConfig
{
    public UNetConfig Outer { get; init; } = new();

    /// <summary>The innermost UNet (when this is the last nesting level).</summary>
    public UNetConfig? InnerUnet { get; init; }

    /// <summary>A further nesting level (3 or more resolutions).</summary>
    public NestedUNetConfig? InnerNested { get; init; }

    /// <summary>No <c>in_adapter</c>: the inner model sees only its own noisy image, no outer features
    /// (ml-mdm's option crashes; here the inner simply skips the feature add).</summary>
    public bool SkipInnerUnetInput { get; init; }

    /// <summary>False: this level's noisy input is divided by its per-sample unbiased std over (C, H, W) before conv_in.</summary>
    public bool SkipNormalization { get; init; }

    /// <summary>ml-mdm's <c>interp_conditioning</c>: this level gets <c>interp_layer1</c> (T/4 → T) and
    /// <c>interp_layer2</c> (T → T) as ml-mdm creates them; ml-mdm's forward never uses them, and neither does this one.</summary>
    public bool InterpConditioning { get; init; }

    /// <summary>Spatial ratio between this level's image and the inner model's image (1 for a temporal level).</summary>
    [JsonIgnore] public int NestRatio => Outer.TemporalMode ? 1 : 1 << (Outer.Levels - 1);

    /// <summary>Ratio of frames between this level's clip and the inner model's (2^(L−1) for a temporal level, else 1):
    /// the inner stream holds every FrameRatio-th frame.</summary>
    [JsonIgnore] public int FrameRatio => Outer.TemporalMode ? 1 << (Outer.Levels - 1) : 1;
}
