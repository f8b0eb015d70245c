using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// The reverse pass: nodes reachable from the root run newest first (creation order is topological); gradients of
/// shared inputs accumulate (+=); each node's saved tensors, its output gradient and any value no later node needs
/// are freed as soon as the node is done, so peak memory falls during the pass. With a gradient-ready subscriber, each
/// leaf that requires grad is reported once, right after its last contribution is accumulated (data-parallel buckets
/// start their all-reduce there); without one, nothing is counted.
/// </summary>
internal static class Backward
{
    public static void Run(Variable root, Tensor? seed, Action<Variable>? gradientReady = null)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException($"Backward: {root} does not require grad (no parameter or input with RequiresGrad reaches it)");
        if (seed is null && root.Data.Numel != 1)
            throw new ArgumentException($"Backward: a seed gradient is needed for non-scalar output {root.Data.ShapeString}");
        if (seed is not null && !Shape.Equal(seed.Dims, root.Data.Dims))
            throw new ArgumentException($"Backward: seed {seed.ShapeString} does not match output {root.Data.ShapeString}");

        var start = seed is null ? root.Backend.Full(1f, root.Shape) : Ops.Copy(seed);
        if (root.IsLeaf) { Accumulate(root, start); gradientReady?.Invoke(root); return; }

        var order = Reachable(root);
        var pendingLeaves = gradientReady is null ? null : LeafUses(order);
        var grads = new Dictionary<Variable, Tensor>(ReferenceEqualityComparer.Instance) { [root] = start };
        try
        {
            foreach (var node in order)
            {
                grads.Remove(node.Output, out var g);
                if (g is not null)
                {
                    Tensor?[] inputGrads;
                    var device = g.Backend;
                    bool sync = OpProfiler.Enabled && OpProfiler.SynchronizeDevice;
                    if (sync) device.Synchronize();
                    long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                    try { inputGrads = node.Backward(node, g); }
                    finally { g.Dispose(); }
                    if (sync) device.Synchronize();
                    if (OpProfiler.Enabled) OpProfiler.Backward(node.Name, System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    for (int i = 0; i < node.Inputs.Length; i++)
                    {
                        var gi = inputGrads[i];
                        if (gi is null) continue;
                        var input = node.Inputs[i];
                        if (!input.RequiresGrad) { gi.Dispose(); continue; }
                        if (!Shape.Equal(gi.Dims, input.Data.Dims))
                            throw new InvalidOperationException($"Backward rule of '{node.Name}' returned a gradient {gi.ShapeString} for input {i} of shape {input.Data.ShapeString}");
                        if (input.IsLeaf) Accumulate(input, gi);
                        else if (grads.TryGetValue(input, out var existing)) { Ops.Add(existing, gi, existing); gi.Dispose(); }
                        else grads[input] = gi;
                    }
                    StepProfile.OpDone(node.Name + " bwd");
                }
                if (pendingLeaves is not null) ReportFinishedLeaves(node, pendingLeaves, gradientReady!);
                Release(node, root);
            }
        }
        finally
        {
            foreach (var t in grads.Values) t.Dispose();
        }
    }

    static void Accumulate(Variable leaf, Tensor g)
    {
        if (leaf.Grad is null) { leaf.Grad = g; return; }
        Ops.Add(leaf.Grad, g, leaf.Grad);
        g.Dispose();
    }

    /// <summary>For each leaf that requires grad, how many inputs of <paramref name="order"/>'s nodes it is: its
    /// gradient is final once that many inputs are done, whether or not each passed a gradient on.</summary>
    static Dictionary<Variable, int> LeafUses(List<Node> order)
    {
        var uses = new Dictionary<Variable, int>(ReferenceEqualityComparer.Instance);
        foreach (var node in order)
            foreach (var input in node.Inputs)
                if (input.IsLeaf && input.RequiresGrad) uses[input] = uses.GetValueOrDefault(input) + 1;
        return uses;
    }

    static void ReportFinishedLeaves(Node node, Dictionary<Variable, int> pendingLeaves, Action<Variable> gradientReady)
    {
        foreach (var input in node.Inputs)
            if (input.IsLeaf && input.RequiresGrad && --pendingLeaves[input] == 0) gradientReady(input);
    }

    /// <summary>Nodes reachable from root, newest first.</summary>
    static List<Node> Reachable(Variable root)
    {
        var seen = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<Node>();
        stack.Push(root.Creator!);
        seen.Add(root.Creator!);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            foreach (var i in n.Inputs)
                if (i.Creator is { } c && i.RequiresGrad && seen.Add(c)) stack.Push(c);
        }
        var list = seen.ToList();
        list.Sort((a, b) => b.Index.CompareTo(a.Index));
        return list;
    }

    static void Release(Node node, Variable root)
    {
        node.ReleaseSaved();
        foreach (var v in node.Inputs.Distinct(ReferenceEqualityComparer.Instance).Cast<Variable>())
            if (v.IsLeaf) continue;
            else if (node.ReadsInputs) Drop(v, root);
            else if (v.PendingUses == 0) Free(v, root);   // held by no node: free once its last reader (this one) is done
        if (node.SavesOutput) Drop(node.Output, root);
    }

    static void Drop(Variable v, Variable root)
    {
        if (--v.PendingUses <= 0) Free(v, root);
    }

    static void Free(Variable v, Variable root)
    {
        if (v.Kept || ReferenceEquals(v, root)) return;
        if (!v.Data.IsDisposed) v.Data.Dispose();
    }
}
