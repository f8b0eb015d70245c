using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model.Config;

namespace Mdm.Model.Nn;

/// <summary>
/// ml-mdm's UNet (§1.6): time embedding (+ pooled conditioning + micro-conditioning), conv_in, down levels that record
/// skips, an optional mid block (ResNet → attention → ResNet), up levels that consume the skips newest-first
/// (up_blocks.0 is the deepest level), and the output head conv_out(SiLU(norm_out(x))). As the innermost model of a
/// NestedUNet it also adds the outer features to its conv_in output and hands its final features (before norm_out)
/// back. The innermost (or stand-alone) UNet owns the conditioning: lm_proj, cond_emb and the class embedding.
/// Video: the input is a clip batch [B·F, C, H, W] (<see cref="Frames"/> frames per clip, frame f of clip b at row
/// b·F + f); timesteps and conditioning are per clip, ResNets repeat each clip's FiLM for its frames, temporal attention
/// blocks follow the spatial ones, and in <see cref="UNetConfig.TemporalMode"/> the levels resample time, not space.
/// </summary>
public class UNet : ModelModule, IDenoiser
{
    /// <summary>What a UNet is in the model tree.</summary>
    public enum Role
    {
        /// <summary>The whole model, or the innermost UNet of a NestedUNet: owns the conditioning layers.</summary>
        Innermost,
        /// <summary>The outer shallow UNet of a nesting level: no mid block, no conditioning layers of its own.</summary>
        Outer,
    }

    readonly Dense tembLayer1, tembLayer2;
    readonly Dense? condEmb, classEmb, lmProj;
    readonly (string Key, float Default, Dense First, Dense Second)[] micro;
    readonly Conv convIn, convOut;
    readonly ResNetBlock[] down, up;
    readonly ResNetBlock[]? mid;
    readonly GroupNorm normOut;
    readonly LmHeadBlock[] lmHead;

    /// <param name="textDim">width of the text tokens the model is given (≤ 0: no text)</param>
    /// <param name="crossDim">width of the tokens inside the network (after lm_proj); the attention blocks' cond width</param>
    /// <param name="frames">frames per clip of this model's stream (1 = images)</param>
    public UNet(ParameterFactory f, UNetConfig config, Role role, int imageChannels, int imageSize, int textDim, int crossDim,
        int frames = 1)
        : base(f)
    {
        if (frames < 1) throw new ArgumentOutOfRangeException(nameof(frames), frames, "frames must be ≥ 1");
        Config = config; ImageChannels = imageChannels; ImageSize = imageSize; TextDim = textDim; Frames = frames;
        int t = config.Temporal, groups = config.Groups, levels = config.Levels;
        TemporalDim = t;
        tembLayer1 = Child("temb_layer1", new Dense(f, t / 4, t));
        tembLayer2 = Child("temb_layer2", new Dense(f, t, t));
        bool owner = role == Role.Innermost;
        if (owner && textDim > 0 && !config.SkipCondEmb) condEmb = Child("cond_emb", new Dense(f, crossDim, t, bias: false));
        if (owner && config.NumClasses > 0)
        {
            NumClasses = config.NumClasses;
            // one-hot · Wᵀ; the extra last row is the learned "no class" (NullClass) embedding.
            classEmb = Child("class_emb", new Dense(f, config.NumClasses + 1, t, bias: false));
        }
        var conditions = config.MicroConditions("unet");
        if (conditions.Count > 0)
        {
            var group = Child("cond_layers", new ModuleGroup(f));
            micro = conditions.Select(c =>
            {
                var layers = group.Add(c.Key, new ModuleGroup(f));
                return (c.Key, c.Default, layers.Add("0", new Dense(f, t / 4, t)), layers.Add("1", new Dense(f, t, t, zeroInit: true)));
            }).ToArray();
        }
        else micro = [];

        int channels = config.ResolutionChannels[0];
        convIn = Child("conv_in", new Conv(f, imageChannels, channels, 3));
        var skipChannels = new Stack<int>([channels]);
        var downGroup = Child("down_blocks", new ModuleGroup(f));
        down = new ResNetBlock[levels];
        var levelFrames = new int[levels];
        bool rotary = config.TemporalPositionalEncoding, time = config.TemporalMode;
        for (int i = 0, fr = frames; i < levels; i++)
        {
            int c = config.ResolutionChannels[i], n = config.ResnetsAt(i);
            var ins = new int[n];
            for (int j = 0; j < n; j++) { ins[j] = j == 0 ? channels : c; skipChannels.Push(c); }
            if (i != levels - 1) skipChannels.Push(c);
            levelFrames[i] = fr;
            down[i] = downGroup.Add(i.ToString(), new ResNetBlock(f, new ResNetBlockSpec(ins, c, t, groups, config.AttentionLayersAt(i),
                CrossDimAt(config, i, crossDim), config.UseAttentionFfn, i != levels - 1 ? ResNetBlock.Resample.Down : ResNetBlock.Resample.None,
                fr, config.TemporalAttentionLayersAt(i), rotary, time, config.AttentionGroups, config.Dropout, config.ActivationCheckpointing)));
            fr = down[i].OutputFrames;
            channels = c;
        }
        BottleneckFrames = levelFrames[^1];
        if (role == Role.Innermost && config.SkipMidBlocks != true)
        {
            var midGroup = Child("mid_blocks", new ModuleGroup(f));
            mid =
            [
                midGroup.Add("0", new ResNetBlock(f, new ResNetBlockSpec([channels], channels, t, groups, 1, crossDim, config.UseAttentionFfn, ResNetBlock.Resample.None, BottleneckFrames,
                    AttentionGroups: config.AttentionGroups, Dropout: config.Dropout, Recompute: config.ActivationCheckpointing))),
                midGroup.Add("1", new ResNetBlock(f, new ResNetBlockSpec([channels], channels, t, groups, 0, -1, false, ResNetBlock.Resample.None, BottleneckFrames, Dropout: config.Dropout, Recompute: config.ActivationCheckpointing))),
            ];
        }
        var upGroup = Child("up_blocks", new ModuleGroup(f));
        up = new ResNetBlock[levels];
        for (int u = 0; u < levels; u++)
        {
            int i = levels - 1 - u, c = config.ResolutionChannels[i], n = config.ResnetsAt(i) + 1;
            var ins = new int[n];
            for (int j = 0; j < n; j++) { ins[j] = channels + skipChannels.Pop(); channels = c; }
            up[u] = upGroup.Add(u.ToString(), new ResNetBlock(f, new ResNetBlockSpec(ins, c, t, groups, config.AttentionLayersAt(i),
                CrossDimAt(config, i, crossDim), config.UseAttentionFfn, i != 0 ? ResNetBlock.Resample.Up : ResNetBlock.Resample.None,
                levelFrames[i], config.TemporalAttentionLayersAt(i), rotary, time, config.AttentionGroups, config.Dropout, config.ActivationCheckpointing)));
        }
        FeatureChannels = channels;
        normOut = Child("norm_out", new GroupNorm(f, groups, channels));
        convOut = Child("conv_out", new Conv(f, channels, imageChannels, 3, zeroInit: true));
        if (condEmb is not null && config.ConditioningFeatureProjDim > 0)
            lmProj = Child("lm_proj", new Dense(f, textDim, config.ConditioningFeatureProjDim));
        if (condEmb is not null && config.NumLmHeadLayers > 0)
        {
            var heads = Child("lm_head", new ModuleGroup(f));
            lmHead = Enumerable.Range(0, config.NumLmHeadLayers).Select(i => heads.Add(i.ToString(), new LmHeadBlock(f, crossDim))).ToArray();
        }
        else lmHead = [];
    }

    static int CrossDimAt(UNetConfig c, int level, int crossDim) => c.AttentionLevels.Contains(level) ? crossDim : -1;

    public UNetConfig Config { get; }
    public int ImageChannels { get; }
    public int ImageSize { get; }
    public int TemporalDim { get; }
    public int TextDim { get; }
    public int NumClasses { get; }
    /// <summary>Frames per clip of this model's own stream (1 = images).</summary>
    public int Frames { get; }
    /// <summary>Frames per clip at the deepest level (what a nested inner model's stream has).</summary>
    public int BottleneckFrames { get; }
    /// <summary>Channels of the final feature map (level 0's width) that a parent level receives.</summary>
    public int FeatureChannels { get; }
    public Backend Backend => Factory.Backend ?? throw new InvalidOperationException("UNet: built to count parameters only");
    public virtual IReadOnlyList<int> Resolutions => [ImageSize];
    /// <summary>Frames per clip of every stream, high → low (all 1 for an image model).</summary>
    public virtual IReadOnlyList<int> StreamFrames => [Frames];

    // ---- IDenoiser ------------------------------------------------------------------------------------------------

    public Variable[] Forward(IReadOnlyList<Variable> noisyHighToLow, IReadOnlyList<int> timesteps, Conditioning conditioning) =>
        Forward(noisyHighToLow, timesteps, conditioning, null);

    /// <summary>
    /// The denoiser forward with optional micro-conditioning values per key (one per sample of the lowest-resolution
    /// batch; e.g. "scale"); keys not given use their configured default, as ml-mdm does.
    /// </summary>
    public Variable[] Forward(IReadOnlyList<Variable> noisyHighToLow, IReadOnlyList<int> timesteps, Conditioning conditioning,
        IReadOnlyDictionary<string, float[]>? microValues)
    {
        RequireAllocated();
        ArgumentNullException.ThrowIfNull(conditioning);
        var res = Resolutions;
        var frames = StreamFrames;
        if (noisyHighToLow.Count != res.Count)
            throw new ArgumentException($"{GetType().Name}: expected {res.Count} noisy inputs (resolutions {string.Join(", ", res)}, high → low), got {noisyHighToLow.Count}");
        var clips = new int[res.Count];
        for (int r = 0; r < res.Count; r++)
        {
            var s = noisyHighToLow[r].Shape;
            string batchText = frames[r] == 1 ? "B" : $"B·{frames[r]}";
            if (s.Length != 4 || s[1] != ImageChannels || s[2] != res[r] || s[3] != res[r] || s[0] % frames[r] != 0)
                throw new ArgumentException($"{GetType().Name}: noisy input {r} is [{string.Join(", ", s)}], expected [{batchText}, {ImageChannels}, {res[r]}, {res[r]}]");
            clips[r] = s[0] / frames[r];
            if (r > 0 && clips[r] < clips[r - 1])
                throw new ArgumentException($"{GetType().Name}: noisy input {r} has {clips[r]} samples, fewer than the higher resolution's {clips[r - 1]} (a higher resolution may only hold the first samples of a lower one)");
        }
        int batch = clips[^1];
        if (timesteps.Count != batch)
            throw new ArgumentException($"{GetType().Name}: {timesteps.Count} timesteps for a batch of {batch}");
        if (microValues is not null)
            foreach (var (key, values) in microValues)
                if (values.Length != batch) throw new ArgumentException($"{GetType().Name}: micro-conditioning '{key}' has {values.Length} values for a batch of {batch}");
        var cond = ForwardConditioning(conditioning, batch);
        return ForwardDenoising(noisyHighToLow, 0, null, timesteps, cond, microValues).Outputs.ToArray();
    }

    // ---- conditioning ---------------------------------------------------------------------------------------------

    /// <summary>ml-mdm's forward_conditioning (§1.7) plus the class embedding; a NestedUNet delegates it inward.</summary>
    public virtual ConditioningState ForwardConditioning(Conditioning c, int batch)
    {
        Variable? emb = null, tokens = null;
        Tensor? mask = null;
        if (TextDim > 0)
        {
            if (c.Tokens is null) throw new ArgumentException($"UNet: the model is text-conditional ({TextDim}-wide tokens) but the conditioning has no tokens");
            var ts = c.Tokens.Shape;
            if (ts.Length != 3 || ts[0] != batch || ts[2] != TextDim)
                throw new ArgumentException($"UNet: tokens are [{string.Join(", ", ts)}], expected [{batch}, S, {TextDim}]");
            if (c.TokenMask is { } m && (m.Rank != 2 || m.Dim(0) != batch || m.Dim(1) != ts[1] || m.DType != DType.F32))
                throw new ArgumentException($"UNet: token mask is {m} , expected F32 [{batch}, {ts[1]}] (1 = real token)");
            if (c.TokenInput is { } input && !ReferenceEquals(input.Data, c.Tokens))
                throw new ArgumentException("UNet: the conditioning's TokenInput does not hold its Tokens tensor");
            tokens = c.TokenInput ?? new Variable(c.Tokens);
            if (lmProj is not null) tokens = lmProj.Forward(tokens);
            foreach (var head in lmHead) tokens = head.Forward(tokens, Config.MaskedCrossAttention ? c.TokenMask : null);
            // ml-mdm pools with a plain mean when lm_head ran unmasked, else with the token mask
            bool plainMean = lmHead.Length > 0 && !Config.MaskedCrossAttention;
            if (condEmb is not null) emb = condEmb.Forward(MaskedMean(tokens, plainMean ? null : c.TokenMask));
            mask = Config.MaskedCrossAttention ? c.TokenMask : null;
        }
        else if (c.Tokens is not null)
            throw new ArgumentException("UNet: text tokens given, but the model has no text conditioning (conditioningFeatureDim ≤ 0)");

        if (classEmb is not null)
        {
            if (c.ClassLabels is not { } labels) throw new ArgumentException($"UNet: the model is class-conditional ({NumClasses} classes) but the conditioning has no labels (use Conditioning.NullClass for none)");
            if (labels.Length != batch) throw new ArgumentException($"UNet: {labels.Length} class labels for a batch of {batch}");
            var oneHot = new float[batch * (NumClasses + 1)];
            for (int b = 0; b < batch; b++)
            {
                int l = labels[b];
                if (l != Conditioning.NullClass && (l < 0 || l >= NumClasses))
                    throw new ArgumentException($"UNet: class label {l} of sample {b} is outside [0, {NumClasses}) and is not Conditioning.NullClass ({Conditioning.NullClass})");
                oneHot[b * (NumClasses + 1) + (l == Conditioning.NullClass ? NumClasses : l)] = 1f;
            }
            var e = classEmb.Forward(HostInput.Constant(Backend, oneHot, batch, NumClasses + 1));
            emb = emb is null ? e : F.Add(emb, e);
        }
        else if (c.ClassLabels is not null)
            throw new ArgumentException("UNet: class labels given, but the model is not class-conditional (numClasses = 0)");
        return new ConditioningState(emb, tokens, mask);
    }

    /// <summary>Σ_s mask·tok / Σ_s mask per sample (plain mean without a mask), as a batched [B,1,S]·[B,S,D] product.
    /// A sample with no real token pools to 0 (torch would give NaN).</summary>
    Variable MaskedMean(Variable tokens, Tensor? mask)
    {
        int b = tokens.Shape[0], s = tokens.Shape[1], d = tokens.Shape[2];
        var w = new float[b * s];
        if (mask is null) Array.Fill(w, 1f / s);
        else
        {
            var m = mask.ToArray();
            for (int i = 0; i < b; i++)
            {
                double total = 0;
                for (int j = 0; j < s; j++) total += m[i * s + j];
                for (int j = 0; j < s; j++) w[i * s + j] = total == 0 ? 0f : (float)(m[i * s + j] / total);
            }
        }
        var weights = HostInput.Constant(Backend, w, b, 1, s);
        return F.Reshape(F.MatMul(weights, tokens), b, d);
    }

    // ---- denoising ------------------------------------------------------------------------------------------------

    /// <summary>
    /// ml-mdm's forward_denoising for streams[index..] (this model's image and, for a NestedUNet, the lower ones):
    /// returns the v-predictions of those streams (high → low) and this model's final features (before norm_out).
    /// </summary>
    /// <param name="features">the outer level's in_adapter output, added after conv_in; null at the top or when the
    /// outer level skips the inner input</param>
    public virtual (List<Variable> Outputs, Variable Features) ForwardDenoising(IReadOnlyList<Variable> streams, int index,
        Variable? features, IReadOnlyList<int> timesteps, ConditioningState cond, IReadOnlyDictionary<string, float[]>? microValues)
    {
        RequireAllocated();
        if (index != streams.Count - 1)
            throw new ArgumentException($"UNet: a plain UNet takes the last stream, got stream {index} of {streams.Count}");
        var xt = streams[index];
        int batch = FrameOps.Clips(xt.Shape[0], Frames, "UNet");
        var c = cond.ForBatch(batch);
        var tembAct = F.Silu(TimeEmbedding(timesteps, batch, c, microValues));
        var x = ForwardInput(xt);
        if (features is not null) x = F.Add(x, features);
        var skips = new List<Variable> { x };
        x = ForwardDown(x, tembAct, c, skips);
        if (mid is not null)
        {
            x = mid[0].Forward(x, tembAct, c.Tokens, c.CrossMask);
            x = mid[1].Forward(x, tembAct, null, null);
        }
        x = ForwardUp(x, tembAct, c, skips);
        return ([ForwardOutput(x)], x);
    }

    /// <summary>temb = temb_layer2(SiLU(temb_layer1(sinusoid(t)))) [+ cond_emb] [+ Σ micro embeddings], for the first
    /// <paramref name="batch"/> samples.</summary>
    protected Variable TimeEmbedding(IReadOnlyList<int> timesteps, int batch, ConditioningState cond, IReadOnlyDictionary<string, float[]>? microValues)
    {
        // read when called: a replayed graph of the denoiser recomputes the sinusoid of the timesteps it is given
        var temb = Mlp(tembLayer1, tembLayer2, () => timesteps.Take(batch).Select(v => (double)v).ToList());
        if (cond.CondEmb is not null) temb = F.Add(temb, cond.CondEmb);
        Variable? sum = null;
        foreach (var (key, def, first, second) in micro)
        {
            var values = new List<double>(batch);
            for (int b = 0; b < batch; b++)
            {
                double v = microValues is not null && microValues.TryGetValue(key, out var given) ? given[b] : def;
                values.Add(key == "scale" ? Math.Min(v / def, 1.0) * def : v * 1000);
            }
            var e = Mlp(first, second, () => values);
            sum = sum is null ? e : F.Add(sum, e);
        }
        return sum is null ? temb : F.Add(temb, sum);
    }

    Variable Mlp(Dense first, Dense second, Func<IReadOnlyList<double>> values)
    {
        int rows = values().Count;
        var raw = HostInput.PerReplay(Backend, () => Sinusoid.Embed(values(), TemporalDim), rows, TemporalDim / 4);
        return second.Forward(F.Silu(first.Forward(raw)));
    }

    protected Variable ForwardDown(Variable x, Variable tembAct, ConditioningState c, List<Variable> skips)
    {
        foreach (var block in down) x = block.Forward(x, tembAct, c.Tokens, c.CrossMask, null, skips);
        return x;
    }

    protected Variable ForwardUp(Variable x, Variable tembAct, ConditioningState c, List<Variable> skips)
    {
        foreach (var block in up)
        {
            int n = block.ResnetCount;
            var taken = skips.GetRange(skips.Count - n, n);
            taken.Reverse();
            skips.RemoveRange(skips.Count - n, n);
            x = block.Forward(x, tembAct, c.Tokens, c.CrossMask, taken);
        }
        return x;
    }

    protected Variable ForwardOutput(Variable x) => convOut.Forward(normOut.ForwardSilu(x, autocastOperand: true));

    protected Variable ForwardInput(Variable xt) => convIn.Forward(xt);
}
