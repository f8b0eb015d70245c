using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>Wraps a forward result as a Variable and, when gradients are wanted, records its node.</summary>
internal static class Record
{
    public static Variable Op(string op, Tensor output, Variable[] inputs, object? attributes = null, Tensor[]? saved = null,
        bool savesOutput = false, CustomOp? custom = null)
    {
        if (OpProfiler.Enabled && OpProfiler.SynchronizeDevice) output.Backend.Synchronize();
        OpProfiler.Forward(op);
        bool wanted = Graph.GradEnabled && inputs.Any(i => i.RequiresGrad);
        if (!wanted)
        {
            if (saved is not null) foreach (var t in saved) t.Dispose();
            return Graph.Adopt(new Variable(output));
        }
        var node = new Node(op, inputs, attributes, saved ?? [], savesOutput) { Custom = custom };
        var v = new Variable(output, node);
        node.Output = v;
        foreach (var i in inputs.Distinct(ReferenceEqualityComparer.Instance).Cast<Variable>())
            if (!i.IsLeaf) i.PendingUses++;
        if (savesOutput) v.PendingUses++;
        Graph.Current?.Nodes.Add(node);
        return Graph.Adopt(v);
    }
}
