using Mdm.Kernels;

namespace Mdm.Autograd.Nn;

/// <summary>torch.nn.Conv2d with PyTorch's default init (or zeros for the zero-initialised layers of ml-mdm).</summary>
public sealed class Conv2d : Module
{
    public Conv2d(Backend backend, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0,
        bool bias = true, bool zeroInit = false, ulong seed = 0, string name = "conv")
    {
        Stride = stride; Padding = padding;
        (Weight, Bias) = ConvParameters.Declare(this, backend, [outChannels, inChannels, kernel, kernel], bias, zeroInit, seed, name);
    }

    public int Stride { get; }
    public int Padding { get; }
    public Variable Weight { get; }
    public Variable? Bias { get; }

    public Variable Forward(Variable x) => F.Conv2d(x, Weight, Bias, Stride, Padding);
}

/// <summary>torch.nn.Conv1d (the video model's temporal down/up-sampling).</summary>
public sealed class Conv1d : Module
{
    public Conv1d(Backend backend, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0,
        bool bias = true, bool zeroInit = false, ulong seed = 0, string name = "conv")
    {
        Stride = stride; Padding = padding;
        (Weight, Bias) = ConvParameters.Declare(this, backend, [outChannels, inChannels, kernel], bias, zeroInit, seed, name);
    }

    public int Stride { get; }
    public int Padding { get; }
    public Variable Weight { get; }
    public Variable? Bias { get; }

    public Variable Forward(Variable x) => F.Conv1d(x, Weight, Bias, Stride, Padding);
}

/// <summary>Weight [out, in, k...] (Kaiming-uniform a=√5, or zeros) and bias [out] (U(±1/√fan_in), or zeros).</summary>
static class ConvParameters
{
    public static (Variable Weight, Variable? Bias) Declare(Module m, Backend backend, int[] weightShape, bool bias, bool zeroInit, ulong seed, string name)
    {
        int fanIn = (int)(Shape.Numel(weightShape) / weightShape[0]);
        var w = backend.Empty(weightShape);
        var weight = m.AddParameter("weight", zeroInit ? Init.Zeros(w) : Init.KaimingUniform(w, fanIn, seed, name + ".weight"));
        if (!bias) return (weight, null);
        var b = backend.Empty(weightShape[0]);
        return (weight, m.AddParameter("bias", zeroInit ? Init.Zeros(b) : Init.BiasUniform(b, fanIn, seed, name + ".bias")));
    }
}
