using Mdm.Autograd;
using Mdm.Autograd.Nn;
using Mdm.Kernels;

// In the tests' root namespace so every test folder sees them without a using.
namespace Mdm.Tests;

/// <summary>
/// Plain layers for the autograd and checkpoint tests (torch.nn.Linear / Conv2d with PyTorch's default init, or zeros),
/// allocated as they are declared. The model itself has one layer vocabulary, Mdm.Model.Nn's Dense and Conv.
/// </summary>
public abstract class TestLayer : Module
{
    /// <summary>Weight [out, in, k...] (Kaiming-uniform a=√5, or zeros) and bias [out] (U(±1/√fan_in), or zeros).</summary>
    protected (Variable Weight, Variable? Bias) WeightAndBias(Backend backend, int[] weightShape, bool bias, bool zeroInit, ulong seed, string name)
    {
        int fanIn = (int)(Shape.Numel(weightShape) / weightShape[0]);
        var w = backend.Empty(weightShape);
        var weight = Parameter("weight", zeroInit ? Init.Zeros(w) : Init.KaimingUniform(w, fanIn, seed, name + ".weight"));
        if (!bias) return (weight, null);
        var b = backend.Empty(weightShape[0]);
        return (weight, Parameter("bias", zeroInit ? Init.Zeros(b) : Init.BiasUniform(b, fanIn, seed, name + ".bias")));
    }
}

public sealed class Linear : TestLayer
{
    public Linear(Backend backend, int inFeatures, int outFeatures, bool bias = true, bool zeroInit = false, ulong seed = 0, string name = "linear")
    {
        InFeatures = inFeatures; OutFeatures = outFeatures;
        (Weight, Bias) = WeightAndBias(backend, [outFeatures, inFeatures], bias, zeroInit, seed, name);
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Variable Weight { get; }
    public Variable? Bias { get; }

    public Variable Forward(Variable x) => F.Linear(x, Weight, Bias);
}

public sealed class Conv2d : TestLayer
{
    public Conv2d(Backend backend, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0,
        bool bias = true, bool zeroInit = false, ulong seed = 0, string name = "conv")
    {
        Stride = stride; Padding = padding;
        (Weight, Bias) = WeightAndBias(backend, [outChannels, inChannels, kernel, kernel], bias, zeroInit, seed, name);
    }

    public int Stride { get; }
    public int Padding { get; }
    public Variable Weight { get; }
    public Variable? Bias { get; }

    public Variable Forward(Variable x) => F.Conv2d(x, Weight, Bias, Stride, Padding);
}
