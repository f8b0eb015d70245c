using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>
/// ml-mdm's FiLM ResNet block (§1.3): h = conv1(SiLU(norm1(x))); (a, b) = time_layer(SiLU(temb)) split in halves;
/// h = SiLU(norm2(h)·(1 + a) + b); out = conv2(h) (zero-init) + (conv3(x) when the width changes, else x).
/// With <see cref="Dropout"/> &gt; 0, h is dropped before conv2 (as ml-mdm's nn.Dropout) while the module is training and
/// a step's key is set (<see cref="ResNetDropout.ForStep"/>); otherwise the block is deterministic.
/// </summary>
public sealed class ResNet : ModelModule
{
    readonly GroupNorm norm1, norm2;
    readonly Conv conv1, conv2;
    readonly Dense timeLayer;
    readonly Conv? conv3;

    public ResNet(ParameterFactory f, int inChannels, int outChannels, int temporalDim, int groups, float dropout = 0) : base(f)
    {
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "ResNet: dropout must be in [0, 1)");
        InChannels = inChannels; OutChannels = outChannels; Dropout = dropout;
        norm1 = Child("norm1", new GroupNorm(f, groups, inChannels));
        conv1 = Child("conv1", new Conv(f, inChannels, outChannels, 3));
        timeLayer = Child("time_layer", new Dense(f, temporalDim, 2 * outChannels));
        norm2 = Child("norm2", new GroupNorm(f, groups, outChannels));
        conv2 = Child("conv2", new Conv(f, outChannels, outChannels, 3, zeroInit: true));
        if (inChannels != outChannels) conv3 = Child("conv3", new Conv(f, inChannels, outChannels, 1));
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    /// <summary>Drop probability before conv2 (ml-mdm's <c>resnet_config.dropout</c>).</summary>
    public float Dropout { get; }
    /// <summary>The mask's Philox key for the current training step; null outside one (no dropout).</summary>
    internal ResNetDropout.StepMask? StepKey { get; set; }

    /// <param name="x">[B, Cin, H, W]</param>
    /// <param name="tembAct">SiLU(temb) [B, T], shared by every block of the level; for a clip batch x [B·F, …] the
    /// scale and shift of each clip are repeated for its F frames (as ml-mdm does)</param>
    public Variable Forward(Variable x, Variable tembAct)
    {
        var dropout = StepKey is { } key && Training ? key : (ResNetDropout.StepMask?)null;
        if (!Recompute || !Graph.GradEnabled) return ForwardAll(x, tembAct, dropout);
        // The recomputation runs in the backward pass, after the step's dropout scope: it reuses this forward's key.
        return Checkpoint.Run(v => ForwardAll(v[0], v[1], dropout), [x, tembAct], Parameters());
    }

    /// <summary>Keep only the inputs and recompute the activations in the backward (the level's
    /// <c>activationCheckpointing</c>).</summary>
    public bool Recompute { get; init; }

    Variable ForwardAll(Variable x, Variable tembAct, ResNetDropout.StepMask? dropout)
    {
        // Under autocast conv1's output is bf16 (torch.autocast's conv output); norm2 reads it as it is and keeps it for its backward.
        var h = conv1.Forward(norm1.ForwardSilu(x, autocastOperand: true), autocastOutput: true);
        var film = timeLayer.Forward(tembAct);
        if (film.Shape[0] != x.Shape[0])
        {
            if (film.Shape[0] == 0 || x.Shape[0] % film.Shape[0] != 0)
                throw new ArgumentException($"ResNet: a batch of {x.Shape[0]} frames is not a whole number of clips for {film.Shape[0]} time embeddings");
            film = FrameOps.RepeatPerFrame(film, x.Shape[0] / film.Shape[0]);
        }
        var ab = F.Split(film, [OutChannels, OutChannels], 1);
        h = norm2.ForwardFilmSilu(h, ab[0], ab[1], autocastOperand: dropout is null);
        if (dropout is { } mask) h = F.Dropout(h, Dropout, mask.For(h.Data.Numel, tembAct.Shape[0]), training: true);
        return conv2.ForwardLastUseResidual(h, conv3 is null ? x : conv3.Forward(x));   // the skip added in conv2's epilogue
    }
}
