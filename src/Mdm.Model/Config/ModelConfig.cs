using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mdm.Model.Config;

/// <summary>
/// The network: a plain UNet (<see cref="Unet"/>) or a NestedUNet (<see cref="Nested"/>), for images of
/// <see cref="ImageSize"/>² with <see cref="ImageChannels"/> channels at the highest resolution. Read it with
/// <see cref="Load"/> / <see cref="Parse"/> from a file holding <c>{"model": {...}}</c> (other sections are ignored
/// here) or the model object alone; both validate.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record ModelConfig
{
    public int ImageSize { get; init; } = 64;
    public int ImageChannels { get; init; } = 3;

    /// <summary>Video: frames per clip of the highest-resolution stream (1 = an image model). Each stream's batch is
    /// [clips · frames, C, H, W] (see <see cref="StreamFrames"/>).</summary>
    public int Frames { get; init; } = 1;
    public UNetConfig? Unet { get; init; }
    public NestedUNetConfig? Nested { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"model config '{path}' does not exist", path);
        try { return Parse(File.ReadAllText(path)); }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new ArgumentException($"model config '{path}': {e.Message}", e);
        }
    }

    /// <summary>Parses and validates; the JSON is a file with a "model" section, or the model object itself.</summary>
    public static ModelConfig Parse(string json)
    {
        using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ArgumentException("model config: the JSON root must be an object");
        var element = doc.RootElement.TryGetProperty("model", out var m) ? m : doc.RootElement;
        var config = element.Deserialize<ModelConfig>(JsonOptions) ?? throw new ArgumentException("model config: \"model\" is null");
        config.Validate();
        return config;
    }

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    // ---- derived facts ---------------------------------------------------------------------------------------------

    /// <summary>The innermost UNet's config (the one that owns text and class conditioning).</summary>
    [JsonIgnore] public UNetConfig Innermost
    {
        get
        {
            if (Unet is not null) return Unet;
            var n = Nested;
            while (n?.InnerNested is not null) n = n.InnerNested;
            return n?.InnerUnet ?? throw new ArgumentException("model: neither \"unet\" nor \"nested\" is set");
        }
    }

    /// <summary>Width of the text tokens the model takes (≤ 0: no text).</summary>
    [JsonIgnore] public int TextFeatureDim => Innermost.ConditioningFeatureDim;

    /// <summary>Width of the text tokens inside the network (after <c>lm_proj</c>): the cross-attention key/value input.</summary>
    [JsonIgnore] public int CrossAttentionDim =>
        Innermost.ConditioningFeatureDim <= 0 ? -1 : Innermost.ConditioningFeatureProjDim > 0 ? Innermost.ConditioningFeatureProjDim : Innermost.ConditioningFeatureDim;

    [JsonIgnore] public int NumClasses => Innermost.NumClasses;

    /// <summary>Image sizes of the streams, high → low.</summary>
    [JsonIgnore] public IReadOnlyList<int> Resolutions
    {
        get
        {
            var r = new List<int> { ImageSize };
            for (var n = Nested; n is not null; n = n.InnerNested) r.Add(r[^1] / n.NestRatio);
            return r;
        }
    }

    /// <summary>Frames per clip of the streams, high → low (temporal nesting levels divide it; spatial ones keep it).</summary>
    [JsonIgnore] public IReadOnlyList<int> StreamFrames
    {
        get
        {
            var r = new List<int> { Frames };
            for (var n = Nested; n is not null; n = n.InnerNested) r.Add(r[^1] / n.FrameRatio);
            return r;
        }
    }

    [JsonIgnore] public bool IsVideo => Frames > 1;

    // ---- validation ----------------------------------------------------------------------------------------------

    /// <summary>Throws ArgumentException naming the field (JSON path) and value of the first impossible setting.</summary>
    public void Validate()
    {
        if (ImageChannels <= 0) throw new ArgumentException($"model.imageChannels: must be positive, got {ImageChannels}");
        if (ImageSize <= 0) throw new ArgumentException($"model.imageSize: must be positive, got {ImageSize}");
        if (Frames <= 0) throw new ArgumentException($"model.frames: must be positive, got {Frames}");
        if ((Unet is null) == (Nested is null))
            throw new ArgumentException("model: set exactly one of \"unet\" (a plain UNet) and \"nested\" (a NestedUNet)");
        string structurePath = "model.nested";
        for (var n = Nested; n is not null; n = n.InnerNested, structurePath += ".innerNested")
            if ((n.InnerUnet is null) == (n.InnerNested is null))
                throw new ArgumentException($"{structurePath}: set exactly one of \"innerUnet\" and \"innerNested\"");
        var inner = Innermost;
        string innerPath = Unet is not null ? "model.unet" : InnermostPath();
        if (inner.ConditioningFeatureProjDim > 0 && inner.ConditioningFeatureDim <= 0)
            throw new ArgumentException($"{innerPath}.conditioningFeatureProjDim: {inner.ConditioningFeatureProjDim} needs conditioningFeatureDim > 0 (got {inner.ConditioningFeatureDim})");
        if (inner.SkipCondEmb && inner.ConditioningFeatureProjDim > 0)
            throw new ArgumentException($"{innerPath}.skipCondEmb: true leaves no lm_proj, but conditioningFeatureProjDim is {inner.ConditioningFeatureProjDim}");
        if (inner.NumLmHeadLayers < 0) throw new ArgumentException($"{innerPath}.numLmHeadLayers: must be ≥ 0, got {inner.NumLmHeadLayers}");
        if (inner.NumLmHeadLayers > 0 && (inner.ConditioningFeatureDim <= 0 || inner.SkipCondEmb))
            throw new ArgumentException($"{innerPath}.numLmHeadLayers: {inner.NumLmHeadLayers} text self-attention layers need text conditioning (conditioningFeatureDim > 0) and the cond embedding (skipCondEmb false)");
        if (inner.NumLmHeadLayers > 0 && CrossAttentionDim % Nn.SelfAttention.Heads != 0)
            throw new ArgumentException($"{innerPath}.numLmHeadLayers: the lm_head attention splits the {CrossAttentionDim}-wide tokens into {Nn.SelfAttention.Heads} heads, which does not divide");
        if (inner.NumClasses < 0) throw new ArgumentException($"{innerPath}.numClasses: must be ≥ 0, got {inner.NumClasses}");
        if (inner.NumClasses > 0 && inner.SkipCondEmb)
            throw new ArgumentException($"{innerPath}.skipCondEmb: a class-conditional model ({inner.NumClasses} classes) needs its cond embedding");

        int size = ImageSize, frames = Frames;
        string path = "model.nested";
        for (var n = Nested; n is not null; n = n.InnerNested, path += ".innerNested")
        {
            var o = n.Outer ?? throw new ArgumentException($"{path}.outer: missing");
            ValidateLevel(o, path + ".outer", outer: true, size, frames);
            if (o.Levels < 2)
                throw new ArgumentException($"{path}.outer.resolutionChannels: a nesting level needs at least 2 levels (one downsample), got {o.Levels}");
            if (o.ConditioningFeatureDim > 0 && o.ConditioningFeatureDim != inner.ConditioningFeatureDim)
                throw new ArgumentException($"{path}.outer.conditioningFeatureDim: {o.ConditioningFeatureDim} differs from the innermost UNet's {inner.ConditioningFeatureDim} (text enters through the innermost UNet; outer levels inherit it)");
            if (o.ConditioningFeatureProjDim > 0)
                throw new ArgumentException($"{path}.outer.conditioningFeatureProjDim: {o.ConditioningFeatureProjDim}, but only the innermost UNet projects the text (lm_proj)");
            if (o.NumLmHeadLayers != 0)
                throw new ArgumentException($"{path}.outer.numLmHeadLayers: {o.NumLmHeadLayers}, but only the innermost UNet holds lm_head");
            if (o.NumClasses != 0)
                throw new ArgumentException($"{path}.outer.numClasses: {o.NumClasses}, but only the innermost UNet holds the class embedding");
            if (o.SkipMidBlocks == false)
                throw new ArgumentException($"{path}.outer.skipMidBlocks: false, but an outer level has no mid block (the inner model replaces it)");
            if (HasCondEmb && o.Temporal != inner.Temporal)
                throw new ArgumentException($"{path}.outer.temporalDim: {o.Temporal} differs from the innermost UNet's {inner.Temporal}; the pooled conditioning embedding is added at every level, so they must be equal");
            size /= n.NestRatio;
            frames /= n.FrameRatio;
        }
        ValidateLevel(inner, innerPath, outer: false, size, frames);
    }

    /// <summary>Whether a pooled conditioning vector (text through cond_emb, or a class embedding) is added to temb.</summary>
    [JsonIgnore] public bool HasCondEmb => !Innermost.SkipCondEmb && (Innermost.ConditioningFeatureDim > 0 || Innermost.NumClasses > 0);

    string InnermostPath()
    {
        string p = "model.nested";
        for (var n = Nested; n!.InnerNested is not null; n = n.InnerNested) p += ".innerNested";
        return p + ".innerUnet";
    }

    static void ValidateLevel(UNetConfig c, string path, bool outer, int size, int frames)
    {
        int l = c.ResolutionChannels?.Length ?? 0;
        if (l == 0) throw new ArgumentException($"{path}.resolutionChannels: needs at least one level");
        if (c.Groups <= 0) throw new ArgumentException($"{path}.groups: must be positive, got {c.Groups}");
        if (!(c.Dropout >= 0 && c.Dropout < 1)) throw new ArgumentException($"{path}.dropout: must be in [0, 1), got {c.Dropout}");
        if (c.AttentionGroups <= 0) throw new ArgumentException($"{path}.attentionGroups: must be positive, got {c.AttentionGroups}");
        for (int i = 0; i < l; i++)
        {
            int ch = c.ResolutionChannels![i];
            if (ch <= 0) throw new ArgumentException($"{path}.resolutionChannels[{i}]: must be positive, got {ch}");
            if (ch % c.Groups != 0) throw new ArgumentException($"{path}.resolutionChannels[{i}]: {ch} channels are not divisible by {c.Groups} groups");
        }
        CheckPerLevel(c.NumResnetsPerResolution, l, path + ".numResnetsPerResolution", min: 1);
        CheckPerLevel(c.NumAttentionLayers, l, path + ".numAttentionLayers", min: 0);
        foreach (int a in c.AttentionLevels ?? [])
            if (a < 0 || a >= l) throw new ArgumentException($"{path}.attentionLevels: level {a} does not exist (levels 0..{l - 1})");
        if ((c.AttentionLevels ?? []).Distinct().Count() != (c.AttentionLevels ?? []).Length)
            throw new ArgumentException($"{path}.attentionLevels: [{string.Join(",", c.AttentionLevels!)}] lists a level twice");
        for (int i = 0; i < l; i++)
            if (c.AttentionLayersAt(i) > 0 && c.ResolutionChannels![i] % Nn.SelfAttention.Heads != 0)
                throw new ArgumentException($"{path}.resolutionChannels[{i}]: {c.ResolutionChannels[i]} channels at an attention level are not divisible by the {Nn.SelfAttention.Heads} heads");
            else if (c.AttentionLayersAt(i) > 0 && c.ResolutionChannels![i] % c.AttentionGroups != 0)
                throw new ArgumentException($"{path}.resolutionChannels[{i}]: {c.ResolutionChannels[i]} channels at an attention level are not divisible by attentionGroups {c.AttentionGroups} (ml-mdm's attention norms use 32 groups)");
        bool mid = !outer && c.SkipMidBlocks != true;
        if (mid && c.ResolutionChannels![^1] % Nn.SelfAttention.Heads != 0)
            throw new ArgumentException($"{path}.resolutionChannels[{l - 1}]: the mid block's attention needs channels divisible by {Nn.SelfAttention.Heads} heads, got {c.ResolutionChannels[^1]}");
        if (mid && c.ResolutionChannels![^1] % c.AttentionGroups != 0)
            throw new ArgumentException($"{path}.resolutionChannels[{l - 1}]: the mid block's attention norm needs channels divisible by attentionGroups {c.AttentionGroups}, got {c.ResolutionChannels[^1]}");
        if (c.TemporalDim is { } t && (t < 8 || t % 8 != 0))
            throw new ArgumentException($"{path}.temporalDim: must be a positive multiple of 8 (T/8 sinusoid frequencies), got {t}");
        if (c.TemporalDim is null && c.Temporal % 8 != 0)
            throw new ArgumentException($"{path}.temporalDim: the default 4 · {c.ResolutionChannels![0]} = {c.Temporal} is not a multiple of 8; set temporalDim");
        c.MicroConditions(path);
        CheckPerLevel(c.NumTemporalAttentionLayers, l, path + ".numTemporalAttentionLayers", min: 0);
        for (int i = 0; i < l; i++)
        {
            if (c.TemporalAttentionLayersAt(i) == 0) continue;
            int ch = c.ResolutionChannels![i], heads = Nn.TemporalAttentionBlock.HeadsFor(ch);
            if (ch % heads != 0)
                throw new ArgumentException($"{path}.resolutionChannels[{i}]: {ch} channels at a temporal attention level do not split into {heads} heads of ~{Nn.TemporalAttentionBlock.HeadChannels}");
            if (c.TemporalPositionalEncoding && (ch / heads) % 2 != 0)
                throw new ArgumentException($"{path}.temporalPositionalEncoding: rotary encoding needs an even head width, but level {i} has {ch} channels in {heads} heads");
        }
        int ratio = 1 << (l - 1);
        if (c.TemporalMode)
        {
            if (frames % ratio != 0)
                throw new ArgumentException($"{path}.temporalMode: {l} levels halve the frames {l - 1} times and need a frame count divisible by {ratio}, but this level's clips have {frames} frames");
        }
        else if (size <= 0 || size % ratio != 0)
            throw new ArgumentException($"{path}.resolutionChannels: {l} levels need an image size divisible by {ratio}, but this level's images are {size}²");
    }

    static void CheckPerLevel(int[]? values, int levels, string path, int min)
    {
        if (values is null || (values.Length != 1 && values.Length != levels))
            throw new ArgumentException($"{path}: needs 1 value or one per level ({levels}), got {(values is null ? "none" : $"[{string.Join(",", values)}]")}");
        foreach (int v in values)
            if (v < min) throw new ArgumentException($"{path}: values must be ≥ {min}, got [{string.Join(",", values)}]");
    }
}
