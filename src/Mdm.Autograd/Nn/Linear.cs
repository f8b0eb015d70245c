using Mdm.Kernels;

namespace Mdm.Autograd.Nn;

/// <summary>torch.nn.Linear: weight [out, in] (Kaiming-uniform a=√5), bias [out] (U(±1/√in)); zeroInit for zero-initialised layers.</summary>
public sealed class Linear : Module
{
    public Linear(Backend backend, int inFeatures, int outFeatures, bool bias = true, bool zeroInit = false, ulong seed = 0, string name = "linear")
    {
        InFeatures = inFeatures; OutFeatures = outFeatures;
        var w = backend.Empty(outFeatures, inFeatures);
        Weight = Parameter("weight", zeroInit ? Init.Zeros(w) : Init.KaimingUniform(w, inFeatures, seed, name + ".weight"));
        if (bias)
        {
            var b = backend.Empty(outFeatures);
            Bias = Parameter("bias", zeroInit ? Init.Zeros(b) : Init.BiasUniform(b, inFeatures, seed, name + ".bias"));
        }
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Variable Weight { get; }
    public Variable? Bias { get; }

    public Variable Forward(Variable x) => F.Linear(x, Weight, Bias);
}
