using Mdm.Kernels;

namespace Mdm.Autograd.Nn;

/// <summary>
/// Parameter initialisers matching PyTorch's defaults, drawn from the Philox stream (seed, hash of the parameter's
/// name), so a model initialises identically on every backend and independently of construction order.
/// </summary>
public static class Init
{
    /// <summary>kaiming_uniform_(a=√5): U(±gain·√(3/fan_in)) with gain = √(2/(1+a²)), i.e. U(±1/√fan_in).</summary>
    public static Tensor KaimingUniform(Tensor t, int fanIn, ulong seed, string name)
    {
        double a = Math.Sqrt(5), gain = Math.Sqrt(2.0 / (1 + a * a));
        float bound = (float)(gain * Math.Sqrt(3.0 / Math.Max(fanIn, 1)));
        return Uniform(t, bound, seed, name);
    }

    /// <summary>Bias default of Linear/Conv: U(±1/√fan_in).</summary>
    public static Tensor BiasUniform(Tensor t, int fanIn, ulong seed, string name) =>
        Uniform(t, (float)(1 / Math.Sqrt(Math.Max(fanIn, 1))), seed, name);

    public static Tensor Uniform(Tensor t, float bound, ulong seed, string name)
    {
        if (t.Numel == 0) return t;
        if (bound == 0) return Ops.Fill(t, 0f);
        return Ops.RandomUniform(t, seed, Subsequence(name), -bound, bound);
    }

    public static Tensor Zeros(Tensor t) => t.Numel == 0 ? t : Ops.Fill(t, 0f);
    public static Tensor Ones(Tensor t) => t.Numel == 0 ? t : Ops.Fill(t, 1f);

    /// <summary>FNV-1a of the name: a stable per-parameter Philox subsequence.</summary>
    public static ulong Subsequence(string name)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in name) { h ^= c; h *= 1099511628211UL; }
        return h;
    }
}
