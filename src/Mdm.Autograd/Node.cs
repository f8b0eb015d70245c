using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// An op's backward rule, captured when the op is recorded: given the node (inputs, saved tensors, output) and the
/// gradient of its output, the gradient of each input (null where not needed). Op parameters are captured by the
/// closure with their own types, so nothing is looked up by name or cast from an attribute object.
/// </summary>
internal delegate Tensor?[] BackwardRule(Node node, Tensor gradOutput);

/// <summary>One recorded op: its inputs, its output, and the backward rule with what it needs.</summary>
internal sealed class Node
{
    public Node(string name, Tensor output, Variable[] inputs, BackwardRule backward, Tensor[] saved, bool savesOutput, bool readsInputs)
    {
        Name = name; Inputs = inputs; Backward = backward; Saved = saved; SavesOutput = savesOutput; ReadsInputs = readsInputs;
        Index = Interlocked.Increment(ref counter);
        Output = new Variable(output, this);
    }

    static long counter;
    /// <summary>Creation order; newer nodes have larger indices.</summary>
    public long Index { get; }

    /// <summary>The op's name, for the profiler and error messages only (never for dispatch).</summary>
    public string Name { get; }
    public Variable[] Inputs { get; }
    public Variable Output { get; }
    public BackwardRule Backward { get; }
    /// <summary>Extra tensors computed in forward for backward (statistics, log-sum-exp); freed right after backward.</summary>
    public Tensor[] Saved { get; private set; }
    public bool SavesOutput { get; }
    /// <summary>The backward reads the inputs' values, so each non-leaf input stays alive until this node is done.</summary>
    public bool ReadsInputs { get; }

    public bool NeedsGrad(int input) => Inputs[input].RequiresGrad;
    public Tensor Input(int i) => Inputs[i].Data;

    public void ReleaseSaved()
    {
        foreach (var t in Saved) t.Dispose();
        Saved = [];
    }
}
