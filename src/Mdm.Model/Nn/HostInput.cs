using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>Host-built inputs (sinusoids, one-hot labels, pooling weights) as variables the active graph owns.</summary>
internal static class HostInput
{
    /// <summary>
    /// Uploads the values as a constant. Under a graph the result is graph-owned (freed with the graph, kept alive for
    /// backward); without one it belongs to the caller, like any op output.
    /// </summary>
    public static Variable Constant(Backend backend, float[] values, params int[] shape)
    {
        using var leaf = new Variable(backend.FromArray(values, shape));
        return F.Reshape(leaf, shape);
    }

    /// <summary>
    /// <see cref="Constant"/> of values that depend on per-call inputs (the timesteps): a captured graph's replay
    /// recomputes them (<see cref="Backend.FromArrayPerReplay"/>), so the closure must read those inputs when called.
    /// </summary>
    public static Variable PerReplay(Backend backend, Func<float[]> values, params int[] shape)
    {
        using var leaf = new Variable(backend.FromArrayPerReplay(values, shape));
        return F.Reshape(leaf, shape);
    }

    /// <summary>Zeros of a shape (padding), owned like <see cref="Constant"/>.</summary>
    public static Variable Zeros(Backend backend, params int[] shape)
    {
        using var leaf = new Variable(backend.Zeros(shape));
        return F.Reshape(leaf, shape);
    }
}
