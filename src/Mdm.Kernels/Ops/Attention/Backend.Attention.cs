namespace Mdm.Kernels;

public abstract partial class Backend
{
    // ---- attention (unchecked; see Ops.Attention / Ops.Rotary) --------------------------------------------------

    /// <summary>
    /// Multi-head attention forward. q [B,H,Nq,D], k and v [B,H,Nk,D], mask null or [B,Nk] (0 = masked key),
    /// o [B,H,Nq,D], lse [B,H,Nq] = log Σ_j exp(s_ij) over the attended keys (+∞ for a row with none; its o row is 0).
    /// Scores s = scale·q·kᵀ with scale = D^-1/2 (D^-1/4 on q and on k). q, k, v are all F32 or all BF16 (widened as
    /// they are read); the rest is F32.
    /// </summary>
    protected internal abstract void AttentionForward(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor o, Tensor lse, float scale);

    /// <summary>
    /// Attention backward (FlashAttention-2 recomputation): P = exp(s − lse), Δ_i = Σ_d dO·O, dS = P∘(dO·vᵀ − Δ),
    /// dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dO. Writes every element of dq, dk, dv.
    /// </summary>
    protected internal abstract void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO, Tensor? mask,
        Tensor dq, Tensor dk, Tensor dv, float scale);

    /// <summary>
    /// Rotary position encoding, rotate-half pairs (i, i + D/2) of x [B,H,N,D] by θ_i = (offset + n)·theta^(−2i/D)
    /// (by −θ_i when <paramref name="inverse"/>, which is the backward). y may be x.
    /// </summary>
    protected internal abstract void Rotary(Tensor x, Tensor y, float theta, int offset, bool inverse);
}
