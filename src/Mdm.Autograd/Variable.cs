using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// A tensor in the autograd graph: its value (<see cref="Data"/>), whether gradients flow to it, its accumulated
/// gradient (<see cref="Grad"/>, leaves only) and the node that produced it. Leaves (parameters, inputs) are owned by
/// whoever created them; values produced by ops are owned by the active <see cref="Graph"/>, which frees them as soon as
/// the backward pass no longer needs them, or when it is disposed.
/// </summary>
public sealed class Variable : IDisposable
{
    public Variable(Tensor data, bool requiresGrad = false, string? name = null)
    {
        Data = data;
        RequiresGrad = requiresGrad;
        Name = name;
    }

    internal Variable(Tensor data, Node creator) : this(data, requiresGrad: true) { Creator = creator; }

    public Tensor Data { get; internal set; }
    /// <summary>Accumulated gradient (+= across backward passes until <see cref="ZeroGrad"/>); leaves only.</summary>
    public Tensor? Grad { get; internal set; }
    public bool RequiresGrad { get; }
    public string? Name { get; set; }
    public bool IsLeaf => Creator is null;
    internal Node? Creator { get; set; }
    /// <summary>Backward nodes that still need <see cref="Data"/>; the graph frees the value when it reaches 0.</summary>
    internal int PendingUses;
    /// <summary>Kept alive past the backward pass and graph disposal (the caller disposes it).</summary>
    internal bool Kept;
    /// <summary>A leaf's BF16 copy for autocast (<see cref="F.AutocastWeight"/>) and the
    /// <see cref="MixedPrecision.MasterWeightsVersion"/> it was made at; freed with the leaf.</summary>
    internal Tensor? Bf16Copy;
    internal long Bf16CopyVersion;

    public int[] Shape => Data.Shape;
    public Backend Backend => Data.Backend;
    public override string ToString() => $"{Name ?? (IsLeaf ? "leaf" : Creator!.Name)} {Data}";

    /// <summary>Keep this value after backward and after the graph is disposed (for losses and outputs you read later).</summary>
    public Variable Keep() { Kept = true; return this; }

    public float Item() => Data.Item();

    /// <summary>Reverse-mode pass from this (scalar unless a seed is given) through the graph that produced it.
    /// <paramref name="gradientReady"/>, when given, hears of each leaf that requires grad once its gradient is final
    /// (in reverse order of use; a leaf the pass never reaches is not reported).</summary>
    public void Backward(Tensor? seed = null, Action<Variable>? gradientReady = null) => Autograd.Backward.Run(this, seed, gradientReady);

    public void ZeroGrad() { Grad?.Dispose(); Grad = null; }

    public void Dispose()
    {
        Grad?.Dispose();
        Grad = null;
        Bf16Copy?.Dispose();
        Bf16Copy = null;
        if (!Data.IsDisposed) Data.Dispose();
    }
}
