using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Training;

/// <summary>
/// EMA of the parameters (ml-mdm: decay 0.9999 from the first update). With <see cref="Warmup"/> the decay ramps as
/// min(decay, (1 + n)/(10 + n)) over the first updates, so short runs get a useful average.
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    readonly (string Name, Variable Param)[] parameters;
    readonly Tensor[] shadow;

    public ExponentialMovingAverage(IEnumerable<(string Name, Variable Param)> parameters, float decay = 0.9999f, bool warmup = false)
    {
        if (!(decay >= 0 && decay <= 1)) throw new ArgumentException($"ExponentialMovingAverage: decay must be in [0, 1], got {decay}");
        this.parameters = parameters.ToArray();
        Decay = decay; Warmup = warmup;
        shadow = this.parameters.Select(p => Ops.Copy(p.Param.Data)).ToArray();
    }

    public float Decay { get; }
    public bool Warmup { get; }
    public long Updates { get; set; }

    /// <summary>Bytes of the averaged copies.</summary>
    public long StateBytes => shadow.Sum(t => t.Bytes);

    public float CurrentDecay => Warmup ? Math.Min(Decay, (1f + Updates) / (10f + Updates)) : Decay;

    public void Update()
    {
        Ops.EmaUpdate(shadow, parameters.Select(p => p.Param.Data).ToList(), CurrentDecay);
        Updates++;
    }

    /// <summary>The averaged weights by parameter name (ema.&lt;name&gt; in checkpoints).</summary>
    public IEnumerable<(string Name, Tensor Value)> Tensors() => parameters.Select((p, i) => (p.Name, shadow[i]));

    /// <summary>Copy the averaged weights into another module with the same parameter names (for sampling).</summary>
    public void CopyTo(IEnumerable<(string Name, Variable Param)> target)
    {
        var byName = parameters.Select((p, i) => (p.Name, i)).ToDictionary(x => x.Name, x => x.i);
        foreach (var (name, p) in target)
        {
            if (!byName.TryGetValue(name, out int i)) throw new ArgumentException($"ExponentialMovingAverage.CopyTo: no average for parameter '{name}'");
            Ops.Copy(shadow[i], p.Data);
        }
        MixedPrecision.MasterWeightsChanged();
    }

    public void Dispose() { foreach (var t in shadow) t.Dispose(); }
}
