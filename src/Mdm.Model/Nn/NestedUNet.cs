using Mdm.Autograd;
using Mdm.Model.Config;

namespace Mdm.Model.Nn;

/// <summary>
/// One nesting level of ml-mdm's NestedUNet (§2.1–2.2): a shallow outer UNet (no mid block) whose bottleneck hosts
/// <c>inner_unet</c> — a UNet, or another NestedUNet for 3+ resolutions. The outer bottleneck goes through the
/// zero-init <c>in_adapter</c> and is added to the inner model's conv_in output; the inner model's final features go
/// through the zero-init <c>out_adapter</c> and are added back to the outer bottleneck. Each resolution has its own
/// output head; the outputs are ordered high → low. A mixed-ratio batch (fewer high-resolution samples: the first
/// ones) zero-pads the inner input and slices the inner features, as ml-mdm does.
/// </summary>
public sealed class NestedUNet : UNet
{
    readonly UNet inner;
    readonly Conv? inAdapter;
    readonly Conv outAdapter;

    public NestedUNet(ParameterFactory f, NestedUNetConfig config, int imageChannels, int imageSize, int textDim, int crossDim,
        int frames = 1)
        : base(f, config.Outer, Role.Outer, imageChannels, imageSize, textDim, crossDim, frames)
    {
        Nesting = config;
        int innerSize = imageSize / config.NestRatio, innerFrames = BottleneckFrames;
        inner = Child("inner_unet", config.InnerNested is { } n
            ? new NestedUNet(f, n, imageChannels, innerSize, textDim, crossDim, innerFrames)
            : new UNet(f, config.InnerUnet ?? throw new ArgumentException("NestedUNet: the config has neither innerUnet nor innerNested"),
                Role.Innermost, imageChannels, innerSize, textDim, crossDim, innerFrames));
        int outerLast = config.Outer.ResolutionChannels[^1], innerFirst = inner.Config.ResolutionChannels[0];
        if (!config.SkipInnerUnetInput) inAdapter = Child("in_adapter", new Conv(f, outerLast, innerFirst, 3, zeroInit: true));
        outAdapter = Child("out_adapter", new Conv(f, innerFirst, outerLast, 3, zeroInit: true));
        if (config.InterpConditioning)
        {
            // created as ml-mdm creates them (so its checkpoints load strictly); its forward never uses them
            Child("interp_layer1", new Dense(f, TemporalDim / 4, TemporalDim));
            Child("interp_layer2", new Dense(f, TemporalDim, TemporalDim));
        }
    }

    public NestedUNetConfig Nesting { get; }
    public UNet Inner => inner;
    public override IReadOnlyList<int> Resolutions => [ImageSize, .. inner.Resolutions];
    public override IReadOnlyList<int> StreamFrames => [Frames, .. inner.StreamFrames];

    public override ConditioningState ForwardConditioning(Conditioning c, int batch) => inner.ForwardConditioning(c, batch);

    public override (List<Variable> Outputs, Variable Features) ForwardDenoising(IReadOnlyList<Variable> streams, int index,
        Variable? features, IReadOnlyList<int> timesteps, ConditioningState cond, IReadOnlyDictionary<string, float[]>? microValues)
    {
        RequireAllocated();
        if (index + Resolutions.Count != streams.Count)
            throw new ArgumentException($"NestedUNet: stream {index} of {streams.Count} does not leave the {Resolutions.Count} streams this level needs");
        var xt = streams[index];
        // samples (clips) of this stream and the next one; the bottleneck has the inner model's frames per clip
        int bh = FrameOps.Clips(xt.Shape[0], Frames, "NestedUNet"), bl = FrameOps.Clips(streams[index + 1].Shape[0], inner.Frames, "NestedUNet");
        int innerFrames = inner.Frames;
        var c = cond.ForBatch(bh);
        var tembAct = F.Silu(TimeEmbedding(timesteps, bh, c, microValues));
        var x = ForwardInput(Nesting.SkipNormalization ? xt : StdNormalize.Apply(xt));
        if (features is not null) x = F.Add(x, features);
        var skips = new List<Variable> { x };
        x = ForwardDown(x, tembAct, c, skips);

        Variable? toInner = inAdapter?.Forward(x);
        if (toInner is not null && bh < bl)
        {
            var pad = toInner.Shape;
            pad[0] = (bl - bh) * innerFrames;
            toInner = F.Concat([toInner, HostInput.Zeros(Backend, pad)], 0);
        }
        var (low, innerFeatures) = inner.ForwardDenoising(streams, index + 1, toInner, timesteps, cond, microValues);
        var back = outAdapter.Forward(innerFeatures);
        x = F.Add(x, bh < bl ? F.Narrow(back, 0, 0, bh * innerFrames) : back);

        x = ForwardUp(x, tembAct, c, skips);
        return ([ForwardOutput(x), .. low], x);
    }
}
