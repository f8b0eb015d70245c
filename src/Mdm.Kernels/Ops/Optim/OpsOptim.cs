namespace Mdm.Kernels;

/// <summary>
/// Hyper-parameters of torch.optim.Adam (<see cref="Decoupled"/> false: weight decay is an L2 term added to the gradient)
/// or torch.optim.AdamW (<see cref="Decoupled"/> true: p ← p·(1 − lr·wd) before the update). Doubles, as torch keeps
/// them as Python floats; the per-step constants are computed in float64 and narrowed once.
/// </summary>
public readonly record struct AdamOptions(double Lr, double Beta1 = 0.9, double Beta2 = 0.999, double Eps = 1e-8,
    double WeightDecay = 0, bool Decoupled = false)
{
    public static AdamOptions Adam(double lr, double weightDecay = 0, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8) =>
        new(lr, beta1, beta2, eps, weightDecay, Decoupled: false);

    /// <summary>torch.optim.AdamW; its default weight decay is 0.01 (ml-mdm passes 0).</summary>
    public static AdamOptions AdamW(double lr, double weightDecay = 0.01, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8) =>
        new(lr, beta1, beta2, eps, weightDecay, Decoupled: true);
}

public static partial class Ops
{
    // ---- MSE loss -----------------------------------------------------------------------------------------------

    /// <summary>torch.nn.functional.mse_loss(x, y) with reduction 'mean': a scalar (shape []) tensor mean((x − y)²).</summary>
    public static Tensor MseLoss(Tensor x, Tensor y, Tensor? loss = null)
    {
        const string op = "MseLoss";
        CheckMse(op, x, y, loss);
        loss = Output(op, x, loss, ReadOnlySpan<int>.Empty);
        if (x.Numel == 0) { loss.Backend.Fill(loss, float.NaN); return loss; }   // torch: mean of nothing is nan
        x.Backend.SquaredErrorRows(x, y, loss, 1, (int)x.Numel, (float)(1.0 / x.Numel));
        return loss;
    }

    /// <summary>Per-sample MSE: x, y [N, ...] → [N], the mean of (x − y)² over all axes but the first
    /// (torch: ((x − y)**2).mean(dim=(1, ..., r−1)), or (x − y)² itself for rank-1 inputs).</summary>
    public static Tensor MseLossPerSample(Tensor x, Tensor y, Tensor? loss = null)
    {
        const string op = "MseLossPerSample";
        CheckMse(op, x, y, loss);
        if (x.Rank == 0) throw new ArgumentException($"{op}: needs a batch axis, got scalar {x.ShapeString}");
        int n = x.Dim(0);
        loss = Output(op, x, loss, [n]);
        if (n == 0) return loss;
        int rowLen = (int)(x.Numel / n);
        if (rowLen == 0) { loss.Backend.Fill(loss, float.NaN); return loss; }
        x.Backend.SquaredErrorRows(x, y, loss, n, rowLen, (float)(1.0 / rowLen));
        return loss;
    }

    /// <summary>Backward of <see cref="MseLoss"/>: dx = 2(x − y)/numel · dy, dy a 1-element tensor (shape [] or [1]).
    /// The target's gradient is −dx (not produced).</summary>
    public static Tensor MseLossBackward(Tensor x, Tensor y, Tensor dy, Tensor? dx = null)
    {
        const string op = "MseLossBackward";
        CheckMse(op, x, y, dx, dy);
        if (dy.Numel != 1 || dy.Rank > 1)
            throw new ArgumentException($"{op}: gradient must be a scalar ([] or [1]), got {dy.ShapeString} for inputs {x.ShapeString}");
        dx = Output(op, x, dx, x.Dims);
        if (x.Numel > 0) x.Backend.SquaredErrorBackward(x, y, dy, dx, (int)x.Numel, (float)(2.0 / x.Numel));
        return dx;
    }

    /// <summary>Backward of <see cref="MseLossPerSample"/>: dx[n, ...] = 2(x − y)/rowLen · dy[n], dy [N].</summary>
    public static Tensor MseLossPerSampleBackward(Tensor x, Tensor y, Tensor dy, Tensor? dx = null)
    {
        const string op = "MseLossPerSampleBackward";
        CheckMse(op, x, y, dx, dy);
        if (x.Rank == 0) throw new ArgumentException($"{op}: needs a batch axis, got scalar {x.ShapeString}");
        if (dy.Rank != 1 || dy.Dim(0) != x.Dim(0))
            throw new ArgumentException($"{op}: gradient has shape {dy.ShapeString}, expected [{x.Dim(0)}] for inputs {x.ShapeString}");
        dx = Output(op, x, dx, x.Dims);
        if (x.Numel == 0) return dx;
        int rowLen = (int)(x.Numel / x.Dim(0));
        x.Backend.SquaredErrorBackward(x, y, dy, dx, rowLen, (float)(2.0 / rowLen));
        return dx;
    }

    static void CheckMse(string op, Tensor x, Tensor y, Tensor? output, Tensor? dy = null)
    {
        SameBackend(op, x, y, output, dy); RequireF32(op, x, y, dy);
        if (!Shape.Equal(x.Dims, y.Dims))
            throw new ArgumentException($"{op}: input {x.ShapeString} and target {y.ShapeString} differ in shape");
    }

    // ---- per-sample quantile (dynamic thresholding) --------------------------------------------------------------

    /// <summary>
    /// Per-sample quantile of |x|: x [N, ...] → q [N], q[n] = torch.quantile(x[n].abs().flatten(), p) with the default
    /// 'linear' interpolation (rank p·(len − 1) computed in float32 as torch does). NaN for a sample holding a NaN.
    /// </summary>
    public static Tensor QuantileAbs(Tensor x, double p, Tensor? q = null)
    {
        const string op = "QuantileAbs";
        SameBackend(op, x, q); RequireF32(op, x);
        if (!(p >= 0 && p <= 1)) throw new ArgumentException($"{op}: quantile p must be in [0, 1], got {p} for input {x.ShapeString}");
        if (x.Rank == 0) throw new ArgumentException($"{op}: needs a batch axis, got scalar {x.ShapeString}");
        int n = x.Dim(0);
        q = Output(op, x, q, [n]);
        if (n == 0) return q;
        long rowLen = x.Numel / n;
        if (rowLen == 0) throw new ArgumentException($"{op}: samples of {x.ShapeString} are empty, their quantile is undefined");
        float rank = (float)p * (float)(rowLen - 1);   // torch: ranks = q * (len - 1) in the input's dtype
        int k = (int)MathF.Floor(rank), kAbove = (int)MathF.Ceiling(rank);
        kAbove = Math.Min(kAbove, (int)rowLen - 1);
        x.Backend.QuantileAbsRows(x, q, n, (int)rowLen, k, kAbove, rank - k);
        return q;
    }

    // ---- optimiser ----------------------------------------------------------------------------------------------

    /// <summary>
    /// The global L2 norm over all <paramref name="grads"/> (torch.nn.utils.clip_grad_norm_'s total_norm) as a scalar
    /// (shape []) device tensor; nothing is read back to the host. Deterministic: fixed-order reductions, no atomics.
    /// </summary>
    public static Tensor GlobalNorm(IReadOnlyList<Tensor> grads, Tensor? norm = null)
    {
        const string op = "GlobalNorm";
        ArgumentNullException.ThrowIfNull(grads);
        if (grads.Count == 0) throw new ArgumentException($"{op}: the list of gradients is empty");
        SameBackend(op, grads[0], norm);
        foreach (var g in grads)
        {
            SameBackend(op, grads[0], g);
            RequireF32(op, g);
        }
        norm = Output(op, grads[0], norm, ReadOnlySpan<int>.Empty);
        grads[0].Backend.GlobalNorm(grads, norm);
        return norm;
    }

    /// <summary>
    /// One fused Adam/AdamW step on one parameter tensor, in place on <paramref name="param"/>, <paramref name="m"/>
    /// (exp_avg) and <paramref name="v"/> (exp_avg_sq), exactly torch's single-tensor formulas with step
    /// <paramref name="step"/> (1 for the first step) for the bias corrections. When <paramref name="gradNorm"/> is
    /// given (from <see cref="GlobalNorm"/>), the gradient is scaled by min(1, maxNorm / (‖g‖ + 1e-6)) inside the same
    /// kernel, read on the device (clip_grad_norm_ without a host sync); <paramref name="grad"/> itself is not modified.
    /// </summary>
    public static void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, AdamOptions options, long step,
        Tensor? gradNorm = null, float maxNorm = 0)
    {
        var args = AdamArgs(options, step, gradNorm, maxNorm);
        CheckAdamTensors(param, grad, m, v, gradNorm, "");
        if (param.Numel > 0) param.Backend.AdamStep(param, grad, m, v, gradNorm, args);
    }

    /// <summary><see cref="AdamStep(Tensor, Tensor, Tensor, Tensor, AdamOptions, long, Tensor?, float)"/> over lists of
    /// parameters (all checked before any is updated).</summary>
    public static void AdamStep(IReadOnlyList<Tensor> parameters, IReadOnlyList<Tensor> grads, IReadOnlyList<Tensor> m,
        IReadOnlyList<Tensor> v, AdamOptions options, long step, Tensor? gradNorm = null, float maxNorm = 0)
    {
        const string op = "AdamStep";
        ArgumentNullException.ThrowIfNull(parameters); ArgumentNullException.ThrowIfNull(grads);
        ArgumentNullException.ThrowIfNull(m); ArgumentNullException.ThrowIfNull(v);
        if (parameters.Count == 0) throw new ArgumentException($"{op}: the list of parameters is empty");
        if (grads.Count != parameters.Count || m.Count != parameters.Count || v.Count != parameters.Count)
            throw new ArgumentException($"{op}: list lengths differ: {parameters.Count} parameters, {grads.Count} gradients, {m.Count} exp_avg, {v.Count} exp_avg_sq");
        var args = AdamArgs(options, step, gradNorm, maxNorm);
        for (int i = 0; i < parameters.Count; i++)
        {
            SameBackend(op, parameters[0], parameters[i]);
            CheckAdamTensors(parameters[i], grads[i], m[i], v[i], gradNorm, $" (tensor {i})");
        }
        for (int i = 0; i < parameters.Count; i++)
            if (parameters[i].Numel > 0) parameters[i].Backend.AdamStep(parameters[i], grads[i], m[i], v[i], gradNorm, args);
    }

    static void CheckAdamTensors(Tensor p, Tensor g, Tensor m, Tensor v, Tensor? gradNorm, string which)
    {
        const string op = "AdamStep";
        SameBackend(op, p, g, m, v, gradNorm); RequireF32(op, p, g, m, v, gradNorm);
        if (!Shape.Equal(p.Dims, g.Dims) || !Shape.Equal(p.Dims, m.Dims) || !Shape.Equal(p.Dims, v.Dims))
            throw new ArgumentException($"{op}: shapes differ{which}: param {p.ShapeString}, grad {g.ShapeString}, exp_avg {m.ShapeString}, exp_avg_sq {v.ShapeString}");
        if (gradNorm is not null && gradNorm.Numel != 1)
            throw new ArgumentException($"{op}: the gradient norm must have 1 element, got {gradNorm.ShapeString}");
    }

    static AdamStepArgs AdamArgs(AdamOptions o, long step, Tensor? gradNorm, float maxNorm)
    {
        const string op = "AdamStep";
        if (step < 1) throw new ArgumentException($"{op}: step must be >= 1 (the first step is 1), got {step}");
        if (!(o.Lr >= 0) || double.IsInfinity(o.Lr)) throw new ArgumentException($"{op}: invalid learning rate {o.Lr}");
        if (!(o.Beta1 >= 0 && o.Beta1 < 1) || !(o.Beta2 >= 0 && o.Beta2 < 1))
            throw new ArgumentException($"{op}: betas must be in [0, 1), got ({o.Beta1}, {o.Beta2})");
        if (!(o.Eps >= 0) || double.IsInfinity(o.Eps)) throw new ArgumentException($"{op}: invalid eps {o.Eps}");
        if (!(o.WeightDecay >= 0) || double.IsInfinity(o.WeightDecay)) throw new ArgumentException($"{op}: invalid weight decay {o.WeightDecay}");
        if (gradNorm is not null && !(maxNorm > 0 && float.IsFinite(maxNorm)))
            throw new ArgumentException($"{op}: max norm for clipping must be positive and finite, got {maxNorm}");
        double bc1 = 1 - Math.Pow(o.Beta1, step), bc2 = 1 - Math.Pow(o.Beta2, step);
        return new AdamStepArgs
        {
            OneMinusBeta1 = (float)(1 - o.Beta1),
            Beta2 = (float)o.Beta2,
            OneMinusBeta2 = (float)(1 - o.Beta2),
            Eps = (float)o.Eps,
            StepSize = (float)(o.Lr / bc1),
            Bc2Sqrt = (float)Math.Sqrt(bc2),
            L2 = o.Decoupled ? 0f : (float)o.WeightDecay,
            ParamScale = o.Decoupled ? (float)(1 - o.Lr * o.WeightDecay) : 1f,
            MaxNorm = gradNorm is null ? 0f : maxNorm,
            Clip = gradNorm is null ? 0 : 1,
        };
    }

    /// <summary>EMA of weights (ml-mdm ModelEma): ema ← decay·ema + (1 − decay)·param, in place on the device.</summary>
    public static void EmaUpdate(Tensor ema, Tensor param, float decay)
    {
        CheckEma(ema, param, decay, "");
        if (ema.Numel > 0) ema.Backend.EmaUpdate(ema, param, decay);
    }

    /// <summary><see cref="EmaUpdate(Tensor, Tensor, float)"/> over lists (all checked before any is updated).</summary>
    public static void EmaUpdate(IReadOnlyList<Tensor> ema, IReadOnlyList<Tensor> parameters, float decay)
    {
        const string op = "EmaUpdate";
        ArgumentNullException.ThrowIfNull(ema); ArgumentNullException.ThrowIfNull(parameters);
        if (ema.Count == 0) throw new ArgumentException($"{op}: the list of tensors is empty");
        if (ema.Count != parameters.Count)
            throw new ArgumentException($"{op}: list lengths differ: {ema.Count} EMA tensors, {parameters.Count} parameters");
        for (int i = 0; i < ema.Count; i++)
        {
            SameBackend(op, ema[0], ema[i]);
            CheckEma(ema[i], parameters[i], decay, $" (tensor {i})");
        }
        for (int i = 0; i < ema.Count; i++)
            if (ema[i].Numel > 0) ema[i].Backend.EmaUpdate(ema[i], parameters[i], decay);
    }

    static void CheckEma(Tensor ema, Tensor param, float decay, string which)
    {
        const string op = "EmaUpdate";
        SameBackend(op, ema, param); RequireF32(op, ema, param);
        if (!Shape.Equal(ema.Dims, param.Dims))
            throw new ArgumentException($"{op}: shapes differ{which}: ema {ema.ShapeString}, param {param.ShapeString}");
        if (!(decay >= 0 && decay <= 1)) throw new ArgumentException($"{op}: decay must be in [0, 1], got {decay}");
    }
}
