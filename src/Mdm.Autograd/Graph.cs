using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// The tape: nodes in creation order (a valid topological order) and the values ops produced. One graph is active per
/// thread (<c>using var g = new Graph();</c>); ops record onto it. Disposing it frees every value it still owns
/// except those marked <see cref="Variable.Keep"/>. Without an active graph, op outputs belong to the caller.
/// </summary>
public sealed class Graph : IDisposable
{
    [ThreadStatic] static Graph? current;
    [ThreadStatic] static int noGradDepth;

    readonly Graph? previous;
    internal readonly List<Node> Nodes = new();
    internal readonly List<Variable> Owned = new();
    bool disposed;

    public Graph()
    {
        previous = current;
        current = this;
    }

    public static Graph? Current => current;

    /// <summary>True unless inside <see cref="NoGrad"/>.</summary>
    public static bool GradEnabled => noGradDepth == 0;

    /// <summary>Ops inside this scope record nothing (sampling, EMA, evaluation).</summary>
    public static IDisposable NoGrad() { noGradDepth++; return new Scope(() => noGradDepth--); }

    /// <summary>Re-enables recording inside a no-grad scope (used by activation checkpointing's recomputation).</summary>
    internal static IDisposable EnableGrad()
    {
        int saved = noGradDepth;
        noGradDepth = 0;
        return new Scope(() => noGradDepth = saved);
    }

    public int NodeCount => Nodes.Count;

    internal static Variable Adopt(Variable v)
    {
        current?.Owned.Add(v);
        return v;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var v in Owned)
            if (!v.Kept) v.Dispose();
        foreach (var n in Nodes) n.ReleaseSaved();
        Owned.Clear();
        Nodes.Clear();
        if (ReferenceEquals(current, this)) current = previous;
    }

    sealed class Scope(Action onDispose) : IDisposable
    {
        bool done;
        public void Dispose() { if (!done) { done = true; onDispose(); } }
    }
}
