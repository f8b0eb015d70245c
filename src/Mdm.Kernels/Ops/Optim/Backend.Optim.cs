namespace Mdm.Kernels;

/// <summary>
/// The per-element constants of one fused Adam/AdamW step, computed on the host in float64 exactly as
/// torch.optim.Adam/AdamW (single-tensor path) computes them, then narrowed to float. A plain struct of floats and one
/// int so the GPU kernel takes it as one argument.
/// </summary>
public struct AdamStepArgs
{
    /// <summary>1 − β1: m ← m + (1 − β1)·(g − m) (torch's exp_avg.lerp_(grad, 1 − β1)).</summary>
    public float OneMinusBeta1;
    /// <summary>β2 and 1 − β2: v ← β2·v + (1 − β2)·g².</summary>
    public float Beta2, OneMinusBeta2;
    public float Eps;
    /// <summary>lr / (1 − β1ᵗ).</summary>
    public float StepSize;
    /// <summary>√(1 − β2ᵗ): denom = √v / Bc2Sqrt + eps.</summary>
    public float Bc2Sqrt;
    /// <summary>Adam's L2 term: g ← g + L2·p (0 for AdamW).</summary>
    public float L2;
    /// <summary>AdamW's decoupled decay: p ← p·(1 − lr·wd) before the update (1 for Adam).</summary>
    public float ParamScale;
    /// <summary>clip_grad_norm_'s max_norm; read only when <see cref="Clip"/> is 1.</summary>
    public float MaxNorm;
    /// <summary>1: scale the gradient by min(1, MaxNorm / (‖g‖ + 1e-6)) with ‖g‖ read from the device; 0: no clipping.</summary>
    public int Clip;
}

public abstract partial class Backend
{
    /// <summary>x, y viewed as [rows, rowLen]: output[r] = scale·Σ_j (x[r,j] − y[r,j])² (deterministic order).</summary>
    protected internal abstract void SquaredErrorRows(Tensor x, Tensor y, Tensor output, int rows, int rowLen, float scale);

    /// <summary>dx[i] = scale·(x[i] − y[i])·dy[i / rowLen] (rowLen = numel for a scalar dy).</summary>
    protected internal abstract void SquaredErrorBackward(Tensor x, Tensor y, Tensor dy, Tensor dx, int rowLen, float scale);

    /// <summary>
    /// x viewed as [rows, rowLen] (rowLen ≥ 1): q[r] = lerp(a, b, frac) where a and b are the <paramref name="k"/>-th and
    /// <paramref name="kAbove"/>-th smallest (0-based) of |x[r, :]|; NaN when the row holds a NaN (as torch.quantile).
    /// </summary>
    protected internal abstract void QuantileAbsRows(Tensor x, Tensor q, int rows, int rowLen, int k, int kAbove, float frac);

    /// <summary>norm[0] = √(Σ over every tensor of Σ x²) (deterministic order; empty tensors contribute 0).</summary>
    protected internal abstract void GlobalNorm(IReadOnlyList<Tensor> tensors, Tensor norm);

    /// <summary>One fused Adam/AdamW step in place on (p, m, v) from g; gradNorm (1 element) is read on the device when args.Clip is 1.</summary>
    protected internal abstract void AdamStep(Tensor p, Tensor g, Tensor m, Tensor v, Tensor? gradNorm, in AdamStepArgs args);

    /// <summary>ema ← decay·ema + (1 − decay)·param, in place.</summary>
    protected internal abstract void EmaUpdate(Tensor ema, Tensor param, float decay);
}
