using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>Wraps a forward result as a Variable and, when gradients are wanted, records its node and rule.</summary>
internal static class Record
{
    public static Variable Op(string name, Tensor output, Variable[] inputs, BackwardRule backward, Tensor[]? saved = null,
        bool savesOutput = false, bool readsInputs = true)
    {
        if (OpProfiler.Enabled && OpProfiler.SynchronizeDevice) output.Backend.Synchronize();
        OpProfiler.Forward(name);
        StepProfile.OpDone(name);
        bool wanted = Graph.GradEnabled && inputs.Any(i => i.RequiresGrad);
        if (!wanted)
        {
            if (saved is not null) foreach (var t in saved) t.Dispose();
            return Graph.Adopt(new Variable(output));
        }
        var node = new Node(name, output, inputs, backward, saved ?? [], savesOutput, readsInputs);
        var v = node.Output;
        if (readsInputs)
            foreach (var i in inputs.Distinct(ReferenceEqualityComparer.Instance).Cast<Variable>())
                if (!i.IsLeaf) i.PendingUses++;
        if (savesOutput) v.PendingUses++;
        Graph.Current?.Nodes.Add(node);
        return Graph.Adopt(v);
    }
}
