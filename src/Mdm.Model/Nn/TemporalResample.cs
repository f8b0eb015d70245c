using Mdm.Autograd;

namespace Mdm.Model.Nn;

/// <summary>
/// Resampling along time of a temporal nesting level (ml-mdm's <c>temporal_mode</c>, §6.2), on a clip batch
/// [B·F, C, h, w] rearranged to [B·h·w, C, F]: down = Conv1d(k 3, stride 2, pad 1), F → ⌈F/2⌉;
/// up = nearest ×2 along time then Conv1d(k 3, stride 1, pad 1), F → 2F. h×w is unchanged.
/// Parameters as torch.nn.Conv1d: weight [C, C, 3], bias [C], PyTorch default init.
/// </summary>
public sealed class TemporalResample : ModelModule
{
    public const int Kernel = 3;

    readonly DeclaredParameter weight, bias;

    public TemporalResample(ParameterFactory f, int channels, bool down) : base(f)
    {
        Down = down;
        int fanIn = channels * Kernel;
        weight = Declare("weight", ParameterInit.KaimingUniform, fanIn, channels, channels, Kernel);
        bias = Declare("bias", ParameterInit.BiasUniform, fanIn, channels);
    }

    public bool Down { get; }

    /// <summary>Frames after this resample, for a clip of <paramref name="frames"/>.</summary>
    public int OutputFrames(int frames) => Down ? (frames + 1) / 2 : 2 * frames;

    /// <param name="x">[B·F, C, h, w]</param>
    public Variable Forward(Variable x, int frames)
    {
        RequireAllocated();
        int h = x.Shape[2], w = x.Shape[3];
        var series = FrameOps.FramesToTimeSeries(x, frames);
        if (!Down) series = FrameOps.UpsampleTimeNearest2x(series);
        var y = F.Conv1d(F.AutocastRounded(series), F.AutocastRounded(weight.Value), bias.Value, stride: Down ? 2 : 1, padding: Kernel / 2);
        return FrameOps.TimeSeriesToFrames(y, h, w);
    }
}
