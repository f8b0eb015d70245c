using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>
/// One level of a UNet (ml-mdm's <c>ResNetBlock</c>, §1.5): ResNets, each followed by its attention blocks (stored
/// flat: attn[i·L + j]), then an optional resample — a stride-2 3×3 conv (down path) or nearest ×2 + 3×3 conv (up
/// path). On the up path each ResNet first concatenates the next skip on channels.
/// Video (§6.3): after each ResNet's spatial attention come its temporal attention blocks (stored flat:
/// t_attn[i·T + j], ml-mdm's name); a clip batch is [B·F, C, H, W] with <see cref="Frames"/> frames per clip at this level, and
/// in temporal mode the resample acts on time (<see cref="TemporalResample"/>) instead of space.
/// </summary>
/// <summary>What one <see cref="ResNetBlock"/> is made of (ml-mdm passes the same as a ResNetConfig object).</summary>
/// <param name="InChannels">input width of each ResNet (on the up path: current width + skip width)</param>
/// <param name="CondDim">width of the cross-attention conditioning (−1: none)</param>
public sealed record ResNetBlockSpec(int[] InChannels, int OutChannels, int TemporalDim, int Groups,
    int AttentionLayersPerResnet, int CondDim, bool UseFfn, ResNetBlock.Resample Resampling,
    int Frames = 1, int TemporalAttentionLayersPerResnet = 0, bool Rotary = false, bool ResampleTime = false,
    int? AttentionGroups = null, float Dropout = 0, bool Recompute = false);

public sealed class ResNetBlock : ModelModule
{
    readonly ResNet[] resnets;
    readonly SelfAttention[] attn;
    readonly Conv? resample;
    readonly TemporalResample? temporalResample;
    readonly TemporalAttentionBlock[] temporalAttn;

    public enum Resample { None, Down, Up }

    public ResNetBlock(ParameterFactory f, ResNetBlockSpec spec) : base(f)
    {
        var (inChannels, outChannels, temporalDim, groups) = (spec.InChannels, spec.OutChannels, spec.TemporalDim, spec.Groups);
        var (attentionLayersPerResnet, condDim, useFfn, resampling) = (spec.AttentionLayersPerResnet, spec.CondDim, spec.UseFfn, spec.Resampling);
        var (frames, temporalAttentionLayersPerResnet, rotary, resampleTime) = (spec.Frames, spec.TemporalAttentionLayersPerResnet, spec.Rotary, spec.ResampleTime);
        AttentionLayersPerResnet = attentionLayersPerResnet;
        TemporalAttentionLayersPerResnet = temporalAttentionLayersPerResnet;
        Resampling = resampling;
        Frames = frames;
        ResamplesTime = resampleTime;
        var rs = Child("resnets", new ModuleGroup(f));
        resnets = inChannels.Select((c, i) => rs.Add(i.ToString(), new ResNet(f, c, outChannels, temporalDim, groups, spec.Dropout) { Recompute = spec.Recompute })).ToArray();
        if (attentionLayersPerResnet > 0)
        {
            var ag = Child("attn", new ModuleGroup(f));
            attn = Enumerable.Range(0, inChannels.Length * attentionLayersPerResnet)
                .Select(i => ag.Add(i.ToString(), new SelfAttention(f, outChannels, spec.AttentionGroups ?? groups, condDim, useFfn))).ToArray();
        }
        else attn = [];
        if (temporalAttentionLayersPerResnet > 0)
        {
            var tg = Child("t_attn", new ModuleGroup(f));
            temporalAttn = Enumerable.Range(0, inChannels.Length * temporalAttentionLayersPerResnet)
                .Select(i => tg.Add(i.ToString(), new TemporalAttentionBlock(f, outChannels, rotary))).ToArray();
        }
        else temporalAttn = [];
        if (resampling != Resample.None && resampleTime)
            temporalResample = Child("resample", new TemporalResample(f, outChannels, down: resampling == Resample.Down));
        else if (resampling == Resample.Down) resample = Child("resample", new Conv(f, outChannels, outChannels, 3, stride: 2));
        else if (resampling == Resample.Up) resample = Child("resample", new Conv(f, outChannels, outChannels, 3));
    }

    public int AttentionLayersPerResnet { get; }
    public Resample Resampling { get; }
    public int TemporalAttentionLayersPerResnet { get; }
    /// <summary>Frames per clip of this level's features (1 for images).</summary>
    public int Frames { get; }
    /// <summary>Whether the resample acts on time (a temporal nesting level) rather than on space.</summary>
    public bool ResamplesTime { get; }
    /// <summary>Frames per clip after the resample.</summary>
    public int OutputFrames => temporalResample?.OutputFrames(Frames) ?? Frames;
    public int ResnetCount => resnets.Length;

    /// <param name="skips">up path: the skips to consume, newest first (one per ResNet); null on the down path</param>
    /// <param name="activations">down path: receives every ResNet output and the resample output (the skips)</param>
    public Variable Forward(Variable x, Variable tembAct, Variable? tokens, Tensor? mask,
        IReadOnlyList<Variable>? skips = null, List<Variable>? activations = null)
    {
        if (skips is not null && skips.Count != resnets.Length)
            throw new InvalidOperationException($"ResNetBlock: {skips.Count} skips for {resnets.Length} ResNets");
        int l = AttentionLayersPerResnet, tl = TemporalAttentionLayersPerResnet;
        FrameOps.Clips(x.Shape[0], Frames, "ResNetBlock");
        if (l > 0 && tokens is not null && tokens.Shape[0] != x.Shape[0])
            (tokens, mask) = FrameOps.RepeatTokensPerFrame(tokens, mask, x.Shape[0] / tokens.Shape[0]);
        for (int i = 0; i < resnets.Length; i++)
        {
            if (skips is not null) x = F.Concat([x, skips[i]], 1);
            x = resnets[i].Forward(x, tembAct);
            for (int j = 0; j < l; j++) x = attn[i * l + j].Forward(x, tokens, mask);
            for (int j = 0; j < tl; j++) x = temporalAttn[i * tl + j].Forward(x, Frames);
            activations?.Add(x);
        }
        if (temporalResample is not null)
        {
            x = temporalResample.Forward(x, Frames);
            activations?.Add(x);
        }
        else if (resample is not null)
        {
            if (Resampling == Resample.Up) x = F.UpsampleNearest2x(x);
            x = resample.Forward(x);
            activations?.Add(x);
        }
        return x;
    }
}
