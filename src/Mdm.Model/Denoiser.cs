using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model;

/// <summary>
/// What a denoiser is conditioned on. All optional: none (unconditional), class labels, or text.
/// Class labels use <see cref="NullClass"/> for "no class" (label dropout during training, the unconditional branch
/// of classifier-free guidance). Text is precomputed token embeddings [B, S, D] with a mask [B, S] (1 = real token).
/// </summary>
public sealed record Conditioning(int[]? ClassLabels = null, Tensor? Tokens = null, Tensor? TokenMask = null)
{
    public const int NullClass = -1;
    public static readonly Conditioning None = new();

    /// <summary>Text conditioning whose token embeddings are a graph input, so the backward reaches them
    /// (<see cref="TokenInput"/>'s gradient).</summary>
    public static Conditioning DifferentiableText(Variable tokens, Tensor? mask) => new(Tokens: tokens.Data, TokenMask: mask) { TokenInput = tokens };

    /// <summary>The tokens as a graph input; its data is <see cref="Tokens"/>. Null: the tokens are a constant.</summary>
    public Variable? TokenInput { get; init; }
    public int BatchSize(int fallback) => ClassLabels?.Length ?? Tokens?.Dim(0) ?? fallback;
}

/// <summary>
/// A multi-resolution denoiser (a UNet or a NestedUNet): given the noisy images of every resolution, ordered
/// high → low, the integer timesteps t (one per sample, shared by all resolutions) and the conditioning, predict v for
/// every resolution (same order and shapes). The diffusion code (loss, samplers) depends only on this interface.
/// </summary>
public interface IDenoiser
{
    /// <summary>Image sizes of the streams, high → low (e.g. [64, 16] for a 64→16 NestedUNet).</summary>
    IReadOnlyList<int> Resolutions { get; }
    int ImageChannels { get; }
    Backend Backend { get; }
    Variable[] Forward(IReadOnlyList<Variable> noisyHighToLow, IReadOnlyList<int> timesteps, Conditioning conditioning);

    /// <summary>
    /// Frames per clip of each stream, high → low (all 1 for images). A video stream r is [B·F_r, C, H, W], frame f of
    /// clip b at row b·F_r + f; timesteps and conditioning are per clip. A stream with fewer frames than the one above
    /// holds every (F_above/F_r)-th frame; one with as many frames holds the same frames at a lower resolution.
    /// </summary>
    IReadOnlyList<int> StreamFrames => Enumerable.Repeat(1, Resolutions.Count).ToArray();
}
