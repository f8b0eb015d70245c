using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Training;

/// <summary>
/// Adam / AdamW over a module's parameters, as ml-mdm trains (§5 of the reference): global-norm gradient clipping
/// folded into the fused update (the norm stays on the device, no host sync), f32 master weights and moments.
/// One <see cref="Step"/> = GlobalNorm + one fused AdamStep per tensor + zeroing the gradients.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    readonly (string Name, Variable Param)[] parameters;
    readonly Tensor[] m, v;

    public AdamWOptimizer(IEnumerable<(string Name, Variable Param)> parameters, AdamOptions options, float maxGradNorm = 2.0f)
    {
        this.parameters = parameters.Where(p => p.Param.RequiresGrad).ToArray();
        if (this.parameters.Length == 0) throw new ArgumentException("AdamWOptimizer: no trainable parameters");
        if (!(maxGradNorm >= 0)) throw new ArgumentException($"AdamWOptimizer: maxGradNorm must be >= 0 (0 = no clipping), got {maxGradNorm}");
        Options = options;
        MaxGradNorm = maxGradNorm;
        m = this.parameters.Select(p => p.Param.Backend.Zeros(p.Param.Shape)).ToArray();
        v = this.parameters.Select(p => p.Param.Backend.Zeros(p.Param.Shape)).ToArray();
    }

    public AdamOptions Options { get; }
    public float MaxGradNorm { get; }
    /// <summary>Updates taken so far (Adam's bias-correction counter).</summary>
    public long StepCount { get; set; }

    /// <summary>Bytes of the moment estimates m and v.</summary>
    public long StateBytes => m.Sum(t => t.Bytes) + v.Sum(t => t.Bytes);

    /// <summary>
    /// Clip (by the global norm) and apply one update with learning rate <paramref name="lr"/>; returns the pre-clip
    /// gradient norm as a 1-element device tensor (owned by the caller; read it only when you log).
    /// Parameters without a gradient this step are treated as having a zero gradient.
    /// </summary>
    public Tensor Step(double lr)
    {
        var grads = new Tensor[parameters.Length];
        using var made = new TensorScope();
        for (int i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i].Param;
            if (p.Grad is null) grads[i] = made.Own(p.Backend.Zeros(p.Shape));
            else grads[i] = p.Grad;
        }
        try
        {
            var norm = Ops.GlobalNorm(grads);
            StepCount++;
            Ops.AdamStep(parameters.Select(p => p.Param.Data).ToList(), grads, m, v, Options with { Lr = lr }, StepCount,
                MaxGradNorm > 0 ? norm : null, MaxGradNorm);
            MixedPrecision.MasterWeightsChanged();
            return norm;
        }
        finally
        {
            foreach (var (_, p) in parameters) p.ZeroGrad();
        }
    }

    /// <summary>Zero every gradient without updating (e.g. a skipped step after a NaN loss).</summary>
    public void ZeroGrad() { foreach (var (_, p) in parameters) p.ZeroGrad(); }

    /// <summary>The moments by name (optimizer.m.&lt;param&gt;, optimizer.v.&lt;param&gt;), for checkpoints.</summary>
    public IEnumerable<(string Name, Tensor Value)> StateTensors()
    {
        for (int i = 0; i < parameters.Length; i++)
        {
            yield return ("optimizer.m." + parameters[i].Name, m[i]);
            yield return ("optimizer.v." + parameters[i].Name, v[i]);
        }
    }

    public void Dispose()
    {
        foreach (var t in m) t.Dispose();
        foreach (var t in v) t.Dispose();
    }
}
