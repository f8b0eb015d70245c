using Mdm.Autograd.Nn;
using Mdm.Kernels;
using Mdm.Model.Diffusion;

namespace Mdm.Model.Nn;

/// <summary>
/// The dropout masks of one training step: every ResNet with dropout &gt; 0 draws from Philox stream
/// (seed, <see cref="DiffusionRandom.Stream"/>(step, <see cref="DiffusionRandom.DropoutPurpose"/>)) at block offset
/// ordinal·2³², its ordinal counting ResNets depth first. So masks differ per ResNet and per step, are the same on every
/// backend, and repeat exactly when a step is replayed. Outside the returned scope no ResNet drops anything (sampling).
/// </summary>
public static class ResNetDropout
{
    public static IDisposable ForStep(Module model, ulong seed, ulong step)
    {
        ArgumentNullException.ThrowIfNull(model);
        var resnets = ResNets(model).ToList();
        ulong stream = DiffusionRandom.Stream(step, DiffusionRandom.DropoutPurpose);
        for (int i = 0; i < resnets.Count; i++)
            resnets[i].StepKey = resnets[i].Dropout > 0 ? new DropoutKey(seed, stream, (ulong)i << 32) : null;
        return new Scope(resnets);
    }

    static IEnumerable<ResNet> ResNets(Module m)
    {
        if (m is ResNet r) yield return r;
        foreach (var (_, child) in m.NamedChildren())
            foreach (var inner in ResNets(child)) yield return inner;
    }

    sealed class Scope(List<ResNet> resnets) : IDisposable
    {
        public void Dispose() { foreach (var r in resnets) r.StepKey = null; }
    }
}
