using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>
/// ml-mdm's <c>SelfAttention1D</c> over sequences x [N, L, C]: qkv = Linear(C→3C)(LayerNorm(x)) split into q, k, v
/// (head h owns channels [h·d, (h+1)·d) of each), optional rotary position encoding of q and k along L, attention with
/// D^-1/4 on q and k (and an optional key mask), then x + proj_out(o) with proj_out zero-initialised.
/// Rotary pairs channels (2i, 2i+1) with frequency θ^(-2i/d), as ml-mdm's rotary_embedding_torch does: q and k are
/// de-interleaved (even channels first) and rotated in rotate-half form, which pairs the same channels; q·k does not
/// depend on the channel order, so the result is ml-mdm's.
/// </summary>
public sealed class SelfAttention1D : ModelModule
{
    readonly LayerNorm norm;
    readonly Dense qkv, projOut;

    public SelfAttention1D(ParameterFactory f, int channels, int heads, bool rotary) : base(f)
    {
        if (heads < 1 || channels % heads != 0)
            throw new ArgumentException($"SelfAttention1D: {channels} channels cannot be split into {heads} heads");
        if (rotary && (channels / heads) % 2 != 0)
            throw new ArgumentException($"SelfAttention1D: rotary encoding needs an even head width, got {channels / heads} ({channels} channels, {heads} heads)");
        Channels = channels; Heads = heads; Rotary = rotary;
        norm = Child("norm", new LayerNorm(f, channels));
        qkv = Child("qkv", new Dense(f, channels, 3 * channels));
        projOut = Child("proj_out", new Dense(f, channels, channels, zeroInit: true));
    }

    public int Channels { get; }
    public int Heads { get; }
    public bool Rotary { get; }

    /// <param name="x">[N, L, C]</param>
    /// <param name="mask">[N, L] key mask (0 = padding) or null</param>
    public Variable Forward(Variable x, Tensor? mask = null)
    {
        int n = x.Shape[0], l = x.Shape[1], c = Channels, d = c / Heads;
        // [N, L, 3C] → [N, L, 3·heads, d] → [N, 3·heads, L, d] → q, k, v [N, heads, L, d]
        var t = F.Permute(F.Reshape(qkv.Forward(norm.Forward(x)), n, l, 3 * Heads, d), 0, 2, 1, 3);
        var parts = F.Split(t, [Heads, Heads, Heads], 1);
        var (q, k, v) = (parts[0], parts[1], parts[2]);
        if (Rotary) { q = F.Rotary(Deinterleave(q)); k = F.Rotary(Deinterleave(k)); }
        var o = F.Attention(F.Autocast(q), F.Autocast(k), F.Autocast(v), mask, bf16Output: MixedPrecision.Enabled);   // bf16 under autocast, read by proj_out as it is
        var merged = F.Reshape(F.Permute(o, 0, 2, 1, 3), n, l, c);
        return F.Add(x, projOut.Forward(merged, autocastOutput: true));
    }

    /// <summary>[.., d] with channels (c0, c1, c2, c3, …) → (c0, c2, …, c1, c3, …).</summary>
    static Variable Deinterleave(Variable x)
    {
        var shape = x.Shape;
        int d = shape[^1], rows = (int)(x.Data.Numel / d);
        return F.Reshape(F.Permute(F.Reshape(x, rows, d / 2, 2), 0, 2, 1), shape);
    }
}

/// <summary>ml-mdm's <c>MLP</c>: x + main.3(GELU(main.1(main.0(x)))), main.0 LayerNorm, main.1 Linear(C→4C),
/// main.3 Linear(4C→C) zero-initialised.</summary>
public sealed class TemporalMlp : ModelModule
{
    readonly LayerNorm norm;
    readonly Dense hidden, output;

    public TemporalMlp(ParameterFactory f, int channels) : base(f)
    {
        var main = Child("main", new ModuleGroup(f));
        norm = main.Add("0", new LayerNorm(f, channels));
        hidden = main.Add("1", new Dense(f, channels, 4 * channels));
        output = main.Add("3", new Dense(f, 4 * channels, channels, zeroInit: true));
    }

    /// <summary>Under autocast main.1 writes bf16 and GELU reads and writes bf16, which main.3 reads as it is.</summary>
    public Variable Forward(Variable x) => F.Add(x, output.Forward(F.Gelu(hidden.Forward(norm.Forward(x), autocastOutput: true)), autocastOutput: true));
}

/// <summary>
/// ml-mdm's <c>TemporalAttentionBlock</c> (§6.3, built with down=True, 32-channel heads): over a clip batch
/// x [B·F, C, H, W] (frames on an explicit axis, see <see cref="FrameOps"/>),
/// h = down_conv(x) (3×3, stride 2: attention runs at half resolution); h → [B·h·w, F, C];
/// h = mlp(attn(h)) (attention along time per pixel); back to [B·F, C, h, w]; h = up_conv(nearest ×2 (h));
/// out = x + h. The attention and MLP branches are zero-initialised residuals, but up_conv is not, so the block
/// is not the identity at initialisation: it starts as x + up_conv(up(down_conv(x))).
/// Odd H or W: the stride-2 conv gives ⌈H/2⌉, the upsample 2⌈H/2⌉ = H + 1, and the last row/column is dropped before
/// up_conv (so up_conv pads at the true border; ml-mdm would fail on the residual add; nearest upsampling of the
/// even-position samples aligns top-left).
/// </summary>
public sealed class TemporalAttentionBlock : ModelModule
{
    public const int HeadChannels = 32;

    readonly Conv downConv, upConv;
    readonly SelfAttention1D attn;
    readonly TemporalMlp mlp;

    public TemporalAttentionBlock(ParameterFactory f, int channels, bool rotary) : base(f)
    {
        Channels = channels;
        downConv = Child("down_conv", new Conv(f, channels, channels, 3, stride: 2));
        attn = Child("attn", new SelfAttention1D(f, channels, HeadsFor(channels), rotary));
        mlp = Child("mlp", new TemporalMlp(f, channels));
        upConv = Child("up_conv", new Conv(f, channels, channels, 3));
    }

    /// <summary>C / 32 heads, at least 1 (ml-mdm's num_head_channels = 32).</summary>
    public static int HeadsFor(int channels) => Math.Max(1, channels / HeadChannels);

    public int Channels { get; }

    /// <param name="x">[B·F, C, H, W], frame f of clip b at row b·F + f</param>
    /// <param name="frames">F</param>
    public Variable Forward(Variable x, int frames)
    {
        RequireAllocated();
        if (x.Shape.Length != 4 || x.Shape[1] != Channels)
            throw new ArgumentException($"TemporalAttentionBlock: input is [{string.Join(", ", x.Shape)}], expected [B·F, {Channels}, H, W]");
        FrameOps.Clips(x.Shape[0], frames, "TemporalAttentionBlock");
        int height = x.Shape[2], width = x.Shape[3];
        var h = downConv.Forward(x);
        int hh = h.Shape[2], hw = h.Shape[3];
        var seq = mlp.Forward(attn.Forward(FrameOps.FramesToSequences(h, frames)));
        h = F.UpsampleNearest2x(FrameOps.SequencesToFrames(seq, hh, hw));
        if (2 * hh != height) h = F.Narrow(h, 2, 0, height);
        if (2 * hw != width) h = F.Narrow(h, 3, 0, width);
        return F.Add(x, upConv.Forward(h, autocastOutput: true));   // bf16 under autocast, the residual sum f32
    }
}
