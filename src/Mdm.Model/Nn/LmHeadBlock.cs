using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>
/// ml-mdm's <c>SelfAttention1DBlock</c>, its <c>lm_head</c> layers: learned self-attention over the text tokens
/// [B, S, D] (attn: 8 heads, no position encoding, masked where the token mask is 0 when cross-attention is masked),
/// then the MLP (mlp.main.0/1/3). Both are zero-initialised residuals, so a fresh block is the identity.
/// </summary>
public sealed class LmHeadBlock : ModelModule
{
    readonly SelfAttention1D attn;
    readonly TemporalMlp mlp;

    public LmHeadBlock(ParameterFactory f, int channels) : base(f)
    {
        attn = Child("attn", new SelfAttention1D(f, channels, SelfAttention.Heads, rotary: false));
        mlp = Child("mlp", new TemporalMlp(f, channels));
    }

    /// <param name="tokens">[B, S, D]</param>
    /// <param name="mask">[B, S] (0 = padding) or null</param>
    public Variable Forward(Variable tokens, Tensor? mask) => mlp.Forward(attn.Forward(tokens, mask));
}
