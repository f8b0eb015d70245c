using Mdm.Autograd.Nn;
using Mdm.Kernels;

namespace Mdm.Tests.Checkpoints;

/// <summary>A small conv + linear model with a nested child, standing in for a UNet level.</summary>
public sealed class TinyUNet : Module
{
    public TinyUNet(Backend b, ulong seed, int channels = 5)
    {
        ConvIn = Child("conv_in", new Conv2d(b, 3, channels, 3, padding: 1, seed: seed, name: "conv_in"));
        Block = Child("block", new TinyBlock(b, seed));
        ConvOut = Child("conv_out", new Conv2d(b, channels, 1, 1, seed: seed, name: "conv_out"));
    }

    public Conv2d ConvIn { get; }
    public TinyBlock Block { get; }
    public Conv2d ConvOut { get; }
}

public sealed class TinyBlock : Module
{
    public TinyBlock(Backend b, ulong seed)
    {
        Proj = Child("proj", new Linear(b, 7, 4, seed: seed, name: "block.proj"));
        Out = Child("out", new Linear(b, 4, 2, bias: false, seed: seed, name: "block.out"));
    }

    public Linear Proj { get; }
    public Linear Out { get; }
}

/// <summary>A nested model: new outer layers around an <c>inner_unet</c>, as in the NestedUNet's state-dict names.</summary>
public sealed class TinyNested : Module
{
    public TinyNested(Backend b, ulong seed)
    {
        InAdapter = Child("in_adapter", new Conv2d(b, 3, 3, 1, seed: seed, name: "in_adapter"));
        Inner = Child("inner_unet", new TinyUNet(b, seed + 1000));
        Embed = Child("embed", new Linear(b, 6, 3, seed: seed, name: "embed"));
    }

    public Conv2d InAdapter { get; }
    public TinyUNet Inner { get; }
    public Linear Embed { get; }
}
