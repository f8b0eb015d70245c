using Mdm.Autograd;
using Mdm.Autograd.Nn;
using Mdm.Kernels;

// In the tests' root namespace so every test folder sees them without a using.
namespace Mdm.Tests;

/// <summary>
/// Plain layers for the autograd and checkpoint tests (torch.nn.Linear / Conv2d with PyTorch's default init, or zeros),
/// allocated as they are declared. The model itself has one layer vocabulary, Mdm.Model.Nn's Dense and Conv.
/// </summary>
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

/// <summary>Weight [out, in, k, k] (Kaiming-uniform a=√5, or zeros) and bias [out] (U(±1/√fan_in), or zeros).</summary>
public sealed class Conv2d : Module
{
    public Conv2d(Backend backend, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0,
        bool bias = true, bool zeroInit = false, ulong seed = 0, string name = "conv")
    {
        Stride = stride; Padding = padding;
        int fanIn = inChannels * kernel * kernel;
        var w = backend.Empty(outChannels, inChannels, kernel, kernel);
        Weight = Parameter("weight", zeroInit ? Init.Zeros(w) : Init.KaimingUniform(w, fanIn, seed, name + ".weight"));
        if (bias)
        {
            var b = backend.Empty(outChannels);
            Bias = Parameter("bias", zeroInit ? Init.Zeros(b) : Init.BiasUniform(b, fanIn, seed, name + ".bias"));
        }
    }

    public int Stride { get; }
    public int Padding { get; }
    public Variable Weight { get; }
    public Variable? Bias { get; }

    public Variable Forward(Variable x) => F.Conv2d(x, Weight, Bias, Stride, Padding);
}
