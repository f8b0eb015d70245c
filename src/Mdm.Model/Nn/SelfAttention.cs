using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>
/// ml-mdm's spatial attention block (§1.4), 8 heads of C/8 channels:
/// qkv = 1×1 conv(GroupNorm(x)) split into q, k, v (head h owns channels [h·d, (h+1)·d) of each);
/// self-attention over the H·W positions, plus — when the block has a conditioning width — cross-attention of the same
/// q over the text tokens (k, v = kv_cond(LayerNorm(tokens)), masked where the mask is 0); the two outputs are summed
/// before one zero-init 1×1 proj_out, added to x. Optional FFN: x + ffn.3(GELU(ffn.1(ffn.0(x)))) with ffn.3 zero-init.
/// </summary>
public sealed class SelfAttention : ModelModule
{
    public const int Heads = 8;

    readonly GroupNorm norm;
    readonly Conv qkv, projOut;
    readonly LayerNorm? normCond;
    readonly Dense? kvCond;
    readonly GroupNorm? ffnNorm;
    readonly Conv? ffnIn, ffnOut;

    /// <param name="condDim">text token width for cross-attention; ≤ 0 for self-attention only</param>
    public SelfAttention(ParameterFactory f, int channels, int groups, int condDim, bool useFfn) : base(f)
    {
        if (channels % Heads != 0) throw new ArgumentException($"SelfAttention: {channels} channels are not divisible by {Heads} heads");
        Channels = channels;
        norm = Child("norm", new GroupNorm(f, groups, channels));
        qkv = Child("qkv", new Conv(f, channels, 3 * channels, 1));
        if (condDim > 0)
        {
            normCond = Child("norm_cond", new LayerNorm(f, condDim));
            kvCond = Child("kv_cond", new Dense(f, condDim, 2 * channels));
        }
        projOut = Child("proj_out", new Conv(f, channels, channels, 1, zeroInit: true));
        if (useFfn)
        {
            var ffn = Child("ffn", new ModuleGroup(f));          // torch Sequential: 0 norm, 1 conv, 2 GELU, 3 conv
            ffnNorm = ffn.Add("0", new GroupNorm(f, groups, channels));
            ffnIn = ffn.Add("1", new Conv(f, channels, 4 * channels, 1));
            ffnOut = ffn.Add("3", new Conv(f, 4 * channels, channels, 1, zeroInit: true));
        }
    }

    public int Channels { get; }
    public bool HasCrossAttention => kvCond is not null;

    /// <param name="x">[B, C, H, W]</param>
    /// <param name="tokens">[B, S, condDim] (required when the block has cross-attention)</param>
    /// <param name="mask">[B, S] key mask (0 = padding) or null to attend to every token</param>
    public Variable Forward(Variable x, Variable? tokens, Tensor? mask)
    {
        int b = x.Shape[0], c = Channels, h = x.Shape[2], w = x.Shape[3], n = h * w, d = c / Heads;
        // [B, 3C, H, W] → [B, 3·heads, d, N] → [B, 3·heads, N, d] → q, k, v [B, heads, N, d]
        // Under autocast qkv is bf16 from the conv on: the reshape, permute and split move bf16 values, the casts are no-ops.
        var t = F.Permute(F.Reshape(qkv.Forward(norm.Forward(x, autocastOperand: true), autocastOutput: true), b, 3 * Heads, d, n), 0, 1, 3, 2);
        var parts = F.Split(t, [Heads, Heads, Heads], 1);
        var (q, k, v) = (F.AutocastLastUse(parts[0]), F.AutocastLastUse(parts[1]), F.AutocastLastUse(parts[2]));
        // Under autocast o is bf16 (torch's SDPA on bf16 inputs), and so is the self + cross sum that proj_out reads.
        var o = F.Attention(q, k, v, null, bf16Output: MixedPrecision.Enabled);
        if (kvCond is not null)
        {
            if (tokens is null) throw new ArgumentException("SelfAttention: this block cross-attends to text, but no tokens were given");
            int s = tokens.Shape[1];
            // [B, S, 2C] → [B, S, 2·heads, d] → [B, 2·heads, S, d] → k, v [B, heads, S, d]
            var kv = F.Permute(F.Reshape(kvCond.Forward(normCond!.Forward(tokens), autocastOutput: true), b, s, 2 * Heads, d), 0, 2, 1, 3);
            var kvParts = F.Split(kv, [Heads, Heads], 1);
            o = F.Add(o, F.Attention(q, F.AutocastLastUse(kvParts[0]), F.AutocastLastUse(kvParts[1]), mask, bf16Output: MixedPrecision.Enabled));
        }
        var merged = F.Reshape(F.Permute(o, 0, 1, 3, 2), b, c, h, w);
        x = F.Add(x, projOut.ForwardLastUse(merged, autocastOutput: true));   // bf16 + f32 residual → f32, as torch promotes
        if (ffnOut is not null)
            // under autocast ffn.1 writes bf16, GELU reads and writes bf16 (f32 inside), ffn.3 reads it as it is
            x = F.Add(x, ffnOut.ForwardLastUse(F.Gelu(ffnIn!.Forward(ffnNorm!.Forward(x, autocastOperand: true), autocastOutput: true)), autocastOutput: true));
        return x;
    }
}
