namespace Mdm.Kernels;

public static partial class Ops
{
    // ---- fused diffusion loss ---------------------------------------------------------------------------------------

    /// <summary>
    /// One resolution's term of the diffusion loss in one pass: p (the prediction), x (the noisy input) and t (the target)
    /// [N, ...], coef [N, 3] = (a, k, w) per sample; e = a·p + k·x − t (the prediction converted to the loss target,
    /// e.g. v → ε: a = √g, k = √(1 − g)), L_n = mean(e²) over each sample, loss = Σ_n w_n·L_n (a scalar [] tensor).
    /// <paramref name="perSample"/> [N], when given, receives L_n.
    /// </summary>
    public static Tensor DiffusionLoss(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor? perSample = null, Tensor? loss = null)
    {
        const string op = "DiffusionLoss";
        var (rows, rowLen) = CheckDiffusionLoss(op, p, x, t, coef);
        SameBackend(op, p, perSample, loss); RequireF32(op, perSample);
        if (perSample is not null && (perSample.Rank != 1 || perSample.Dim(0) != rows))
            throw new ArgumentException($"{op}: per-sample output has shape {perSample.ShapeString}, expected [{rows}] for inputs {p.ShapeString}");
        loss = Output(op, p, loss, ReadOnlySpan<int>.Empty);
        if (rows == 0) { p.Backend.Fill(loss, 0f); return loss; }
        using var scratch = perSample is null ? p.Backend.Empty(rows) : null;
        var losses = perSample ?? scratch!;
        if (rowLen == 0)
        {   // torch: the mean of nothing is nan
            p.Backend.Fill(losses, float.NaN);
            p.Backend.Fill(loss, float.NaN);
            return loss;
        }
        p.Backend.DiffusionLossForward(p, x, t, coef, losses, loss, rows, rowLen);
        return loss;
    }

    /// <summary>Backward of <see cref="DiffusionLoss"/> for the gradient g (a 1-element tensor), in one pass, into the
    /// outputs given (null: not wanted): dp = s·a·e, dx = s·k·e, dt = −s·e with s = 2·w·g/rowLen per sample.</summary>
    public static void DiffusionLossBackward(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor g, Tensor? dp, Tensor? dx = null, Tensor? dt = null)
    {
        const string op = "DiffusionLossBackward";
        var (_, rowLen) = CheckDiffusionLoss(op, p, x, t, coef);
        SameBackend(op, p, g, dp, dx, dt); RequireF32(op, g, dp, dx, dt);
        if (g.Numel != 1 || g.Rank > 1) throw new ArgumentException($"{op}: gradient must be a scalar ([] or [1]), got {g.ShapeString}");
        foreach (var d in new[] { dp, dx, dt })
            if (d is not null && !Shape.Equal(d.Dims, p.Dims))
                throw new ArgumentException($"{op}: gradient output {d.ShapeString} does not match the inputs {p.ShapeString}");
        if (p.Numel > 0 && (dp ?? dx ?? dt) is not null) p.Backend.DiffusionLossBackward(p, x, t, coef, g, dp, dx, dt, rowLen);
    }

    /// <summary>Gradient of <see cref="DiffusionLoss"/> with respect to its coefficients, [N, 3]: computed on the host
    /// from the downloaded inputs (only the op checks differentiate the coefficients; training never does).</summary>
    public static Tensor DiffusionLossCoefBackward(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor g)
    {
        CheckDiffusionLoss("DiffusionLossCoefBackward", p, x, t, coef);
        static double[] D(Tensor v) => Array.ConvertAll(v.ToArray(), f => (double)f);
        var (_, _, _, dcoef) = Reference.Ref.DiffusionLossBackward(D(p), D(x), D(t), D(coef), g.ToArray()[0]);
        return p.Backend.FromArray(Array.ConvertAll(dcoef, v => (float)v), coef.Shape);
    }

    static (int Rows, int RowLen) CheckDiffusionLoss(string op, Tensor p, Tensor x, Tensor t, Tensor coef)
    {
        SameBackend(op, p, x, t, coef); RequireF32(op, p, x, t, coef);
        if (p.Rank == 0) throw new ArgumentException($"{op}: needs a batch axis, got scalar {p.ShapeString}");
        if (!Shape.Equal(p.Dims, x.Dims) || !Shape.Equal(p.Dims, t.Dims))
            throw new ArgumentException($"{op}: prediction {p.ShapeString}, noisy input {x.ShapeString} and target {t.ShapeString} must have one shape");
        int rows = p.Dim(0);
        if (coef.Rank != 2 || coef.Dim(0) != rows || coef.Dim(1) != 3)
            throw new ArgumentException($"{op}: coefficients are {coef.ShapeString}, expected [{rows}, 3] (a, k, w per sample) for {p.ShapeString}");
        return (rows, rows == 0 ? 0 : (int)(p.Numel / rows));
    }
}
