namespace Mdm.Kernels;

public abstract partial class Backend
{
    /// <summary>
    /// p, x, t viewed as [rows, rowLen], coef [rows, 3] = (a, k, w) per row: e = a·p + k·x − t;
    /// perSample[r] = Σ_j e[r, j]² / rowLen; loss[0] = Σ_r w_r·perSample[r] (deterministic order).
    /// </summary>
    protected internal abstract void DiffusionLossForward(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor perSample, Tensor loss, int rows, int rowLen);

    /// <summary>With e as in the forward and s_r = 2·w_r·g[0]/rowLen: dp = s_r·a_r·e, dx = s_r·k_r·e, dt = −s_r·e, each
    /// written only where its tensor is given.</summary>
    protected internal abstract void DiffusionLossBackward(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor g,
        Tensor? dp, Tensor? dx, Tensor? dt, int rowLen);
}
