using Mdm.Autograd.Nn;
using Mdm.Kernels;
using Mdm.Model.Diffusion;

namespace Mdm.Model.Nn;

/// <summary>
/// The dropout masks of one training step: every ResNet with dropout &gt; 0 draws from Philox stream
/// (seed, <see cref="DiffusionRandom.Stream"/>(step, <see cref="DiffusionRandom.DropoutPurpose"/>)) at block offset
/// ordinal·2³², its ordinal counting ResNets depth first. So masks differ per ResNet and per step, are the same on every
/// backend, and repeat exactly when a step is replayed. Outside the returned scope no ResNet drops anything (sampling).
/// A process holding samples from <c>firstSample</c> of a global batch (data-parallel) draws its rows' part of the
/// global batch's mask.
/// </summary>
public static class ResNetDropout
{
    public static IDisposable ForStep(Module model, ulong seed, ulong step, int firstSample = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        var resnets = ResNets(model).ToList();
        ulong stream = DiffusionRandom.Stream(step, DiffusionRandom.DropoutPurpose);
        for (int i = 0; i < resnets.Count; i++)
            resnets[i].StepKey = resnets[i].Dropout > 0 ? new StepMask(new DropoutKey(seed, stream, (ulong)i << 32), firstSample) : null;
        return new Scope(resnets);
    }

    /// <summary>A ResNet's mask for one step: <see cref="Key"/> is the global batch's, from sample <see cref="FirstSample"/> on.</summary>
    internal readonly record struct StepMask(DropoutKey Key, int FirstSample)
    {
        /// <summary>The key of an activation of <paramref name="values"/> elements holding <paramref name="samples"/> samples.</summary>
        public DropoutKey For(long values, int samples)
        {
            if (FirstSample == 0) return Key;
            long first = new BatchSlice(FirstSample, FirstSample + samples).FirstValue(values / samples, "a ResNet's dropout mask");
            return Key with { Offset = Key.Offset + (ulong)(first / 4) };
        }
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
