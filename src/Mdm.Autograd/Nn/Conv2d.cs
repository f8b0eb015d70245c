using Mdm.Kernels;

namespace Mdm.Autograd.Nn;

/// <summary>torch.nn.Conv2d with PyTorch's default init (or zeros for the zero-initialised layers of ml-mdm).</summary>
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

/// <summary>torch.nn.Conv1d (the video model's temporal down/up-sampling).</summary>
public sealed class Conv1d : Module
{
    public Conv1d(Backend backend, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0,
        bool bias = true, bool zeroInit = false, ulong seed = 0, string name = "conv")
    {
        Stride = stride; Padding = padding;
        int fanIn = inChannels * kernel;
        var w = backend.Empty(outChannels, inChannels, kernel);
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

    public Variable Forward(Variable x) => F.Conv1d(x, Weight, Bias, Stride, Padding);
}
