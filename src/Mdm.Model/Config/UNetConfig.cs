using System.Text.Json.Serialization;

namespace Mdm.Model.Config;

/// <summary>
/// One UNet level (ml-mdm's <c>UNetConfig</c>): a stand-alone UNet, the innermost UNet of a NestedUNet, or the outer
/// shallow UNet of one nesting level. List fields of length 1 are broadcast to every level, as in ml-mdm.
/// Defaults follow ml-mdm's dataclass where it has one.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record UNetConfig
{
    /// <summary>Channels per level; L = its length, with L − 1 downsamples.</summary>
    public int[] ResolutionChannels { get; init; } = [128, 256, 256, 512, 1024];

    /// <summary>ResNets per level on the down path (the up path has one more). One value or one per level.</summary>
    public int[] NumResnetsPerResolution { get; init; } = [2];

    /// <summary>Level indices (0 = full resolution) with attention blocks (and cross-attention when text is used).</summary>
    public int[] AttentionLevels { get; init; } = [2, 3];

    /// <summary>Attention blocks after each ResNet of an attention level. One value or one per level.</summary>
    public int[] NumAttentionLayers { get; init; } = [1];

    /// <summary>Width T of the time embedding; null means 4 · ResolutionChannels[0].</summary>
    public int? TemporalDim { get; init; }

    /// <summary>Text token width (2048 for flan-t5-xl); ≤ 0 means no text conditioning. Set it on the innermost UNet
    /// (outer levels inherit it; an outer level that sets it must agree).</summary>
    public int ConditioningFeatureDim { get; init; } = -1;

    /// <summary>If &gt; 0, <c>lm_proj</c> maps text tokens to this width, which becomes the cross-attention width. Innermost only.</summary>
    public int ConditioningFeatureProjDim { get; init; } = -1;

    /// <summary>Use the token padding mask inside cross-attention (ml-mdm's 64² configs turn it off).</summary>
    public bool MaskedCrossAttention { get; init; } = true;

    /// <summary>Attention blocks end with GroupNorm → 1×1 conv (4C) → GELU → zero-init 1×1 conv.</summary>
    public bool UseAttentionFfn { get; init; }

    /// <summary>ml-mdm's "KEY:DEFAULT[,KEY:DEFAULT…]", e.g. "scale:64": one embedding MLP per key.</summary>
    public string? MicroConditioning { get; init; }

    /// <summary>GroupNorm groups of the ResNet and output norms (ml-mdm: <c>resnet_config.num_groups_norm</c>, 32).</summary>
    public int Groups { get; init; } = 32;

    /// <summary>ml-mdm's <c>resnet_config.dropout</c>: each ResNet of this level zeroes activations with this probability
    /// after its second norm/FiLM/SiLU, before conv2, while training (0 = none; must be in [0, 1)).</summary>
    public float Dropout { get; init; }

    /// <summary>Activation checkpointing: each ResNet of this level keeps only its inputs and recomputes its
    /// activations in the backward pass (one more ResNet forward per step, less activation memory, the same
    /// gradients). Not an ml-mdm field: a memory setting that changes no value.</summary>
    public bool ActivationCheckpointing { get; init; }

    /// <summary>GroupNorm groups of the attention and attention-FFN norms. ml-mdm hard-codes 32 there, whatever
    /// <see cref="Groups"/> says; small models set it lower.</summary>
    public int AttentionGroups { get; init; } = 32;

    /// <summary>ml-mdm's <c>num_lm_head_layers</c>: self-attention blocks (<c>lm_head.i</c>: 8 heads, then an MLP) over the
    /// text tokens after <c>lm_proj</c>, before pooling and cross-attention. Innermost only; needs text and cond_emb.</summary>
    public int NumLmHeadLayers { get; init; }

    /// <summary>Class-conditional models: the number of classes (0 = none). Innermost only. A learned extra row serves
    /// <see cref="Conditioning.NullClass"/>, so classifier-free guidance works.</summary>
    public int NumClasses { get; init; }

    /// <summary>No mid block. Null = the usual choice: false for a (innermost or stand-alone) UNet, true for the outer
    /// UNet of a nesting level, where the inner model takes the mid block's place (false is rejected there).</summary>
    public bool? SkipMidBlocks { get; init; }

    /// <summary>No pooled-conditioning projection (<c>cond_emb</c>, and then no <c>lm_proj</c>) on the innermost UNet.
    /// Outer levels never have one: they use the innermost's.</summary>
    public bool SkipCondEmb { get; init; }

    /// <summary>Video: temporal attention blocks (§6.3) after each ResNet (and its spatial attention) of a level, on the
    /// down and up paths, never in the mid block. One value or one per level; 0 = none.</summary>
    public int[] NumTemporalAttentionLayers { get; init; } = [0];

    /// <summary>Video: rotary position encoding of q and k along time in the temporal attention blocks (ml-mdm's
    /// <c>temporal_positional_encoding</c>); false means no positional information at all, as in ml-mdm.</summary>
    public bool TemporalPositionalEncoding { get; init; }

    /// <summary>Video: the levels of this UNet resample along time (Conv1d over frames, §6.2) instead of space, so
    /// frames halve per level and h×w stays. Set on the outer UNet of a temporal nesting level.</summary>
    public bool TemporalMode { get; init; }

    [JsonIgnore] public int Levels => ResolutionChannels.Length;
    [JsonIgnore] public int Temporal => TemporalDim ?? 4 * (ResolutionChannels.Length > 0 ? ResolutionChannels[0] : 0);
    public int ResnetsAt(int level) => NumResnetsPerResolution.Length == 1 ? NumResnetsPerResolution[0] : NumResnetsPerResolution[level];
    public int AttentionLayersAt(int level) =>
        !AttentionLevels.Contains(level) ? 0 : NumAttentionLayers.Length == 1 ? NumAttentionLayers[0] : NumAttentionLayers[level];

    public int TemporalAttentionLayersAt(int level) =>
        NumTemporalAttentionLayers.Length == 1 ? NumTemporalAttentionLayers[0] : NumTemporalAttentionLayers[level];

    /// <summary>The micro-conditioning keys and defaults, in order.</summary>
    public IReadOnlyList<(string Key, float Default)> MicroConditions(string where)
    {
        if (string.IsNullOrWhiteSpace(MicroConditioning)) return [];
        var r = new List<(string, float)>();
        foreach (var item in MicroConditioning.Split(','))
        {
            var kv = item.Split(':');
            if (kv.Length != 2 || kv[0].Trim().Length == 0 || kv[0].Contains('.') ||
                !float.TryParse(kv[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float v))
                throw new ArgumentException($"{where}.microConditioning: '{item}' in '{MicroConditioning}' is not KEY:NUMBER");
            if (kv[0].Trim() == "scale" && !(v > 0))
                throw new ArgumentException($"{where}.microConditioning: the default of 'scale' must be positive, got {v}");
            if (r.Any(x => x.Item1 == kv[0].Trim()))
                throw new ArgumentException($"{where}.microConditioning: key '{kv[0].Trim()}' appears twice in '{MicroConditioning}'");
            r.Add((kv[0].Trim(), v));
        }
        return r;
    }
}
