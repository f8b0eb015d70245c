namespace Mdm.Kernels;

/// <summary>
/// Owns the tensors made for one piece of work (a loss, a sampling run, an optimizer step) and frees them together
/// when disposed, in the order they were made, instead of a Dispose call per tensor on every exit path.
/// </summary>
public sealed class TensorScope : IDisposable
{
    readonly List<Tensor> owned = new();

    /// <summary>Takes ownership of <paramref name="tensor"/> and returns it.</summary>
    public Tensor Own(Tensor tensor)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        owned.Add(tensor);
        return tensor;
    }

    public int Count => owned.Count;

    bool disposed;

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var t in owned) t.Dispose();
        owned.Clear();
    }
}
