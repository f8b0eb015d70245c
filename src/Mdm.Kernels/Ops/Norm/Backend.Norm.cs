namespace Mdm.Kernels;

/// <summary>Normalisation kernels (GroupNorm, fused GroupNorm + FiLM + SiLU, LayerNorm). Unchecked: call them through <see cref="Ops"/>.</summary>
public abstract partial class Backend
{
    /// <summary>
    /// GroupNorm over x [N, C, S] (S = product of the trailing dims), <paramref name="groups"/> groups of C/groups channels:
    /// xhat = (x − mean)·rstd per (n, g), mean and rstd written to [N, groups] (biased variance, eps inside the sqrt).
    /// Then z = (xhat·gamma_c + beta_c)·(1 + a[n,c]) + b[n,c] when <paramref name="a"/>/<paramref name="b"/> are given
    /// (FiLM; both or neither), and y = SiLU(z) when <paramref name="silu"/>, else y = z. y is F32, or BF16 (each value
    /// rounded to nearest even in the store: autocast's copy without a separate cast pass).
    /// </summary>
    protected internal abstract void GroupNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor? a, Tensor? b, bool silu,
        int groups, float eps, Tensor y, Tensor mean, Tensor rstd);

    /// <summary>
    /// Backward of <see cref="GroupNormForward"/> from the saved mean/rstd (xhat is recomputed). Writes dx, dgamma [C],
    /// dbeta [C] and, with FiLM, da and db [N, C]. Sums over samples are deterministic.
    /// </summary>
    protected internal abstract void GroupNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma, Tensor beta,
        Tensor? a, Tensor? b, bool silu, int groups, Tensor dx, Tensor dgamma, Tensor dbeta, Tensor? da, Tensor? db);

    /// <summary>LayerNorm over the last axis of x viewed as [rows, d]: y = (x − mean)·rstd·gamma + beta; mean, rstd [rows].</summary>
    protected internal abstract void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, int rows, int d, float eps,
        Tensor y, Tensor mean, Tensor rstd);

    /// <summary>Backward of <see cref="LayerNormForward"/> from the saved mean/rstd: dx, dgamma [d], dbeta [d] (deterministic sums over rows).</summary>
    protected internal abstract void LayerNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma, int rows, int d,
        Tensor dx, Tensor dgamma, Tensor dbeta);
}
