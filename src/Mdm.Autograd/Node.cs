using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>One recorded op: what it was, its inputs, its output, and what its backward rule needs.</summary>
internal sealed class Node
{
    public Node(string op, Variable[] inputs, object? attributes, Tensor[] saved, bool savesOutput)
    {
        Op = op; Inputs = inputs; Attributes = attributes; Saved = saved; SavesOutput = savesOutput;
        Index = Interlocked.Increment(ref counter);
    }

    static long counter;
    /// <summary>Creation order; newer nodes have larger indices.</summary>
    public long Index { get; }

    public string Op { get; }
    public Variable[] Inputs { get; }
    public Variable Output { get; set; } = null!;
    /// <summary>Op parameters the rule needs (axes, strides, epsilon, ...).</summary>
    public object? Attributes { get; }
    /// <summary>Extra tensors computed in forward for backward (statistics, log-sum-exp); freed right after backward.</summary>
    public Tensor[] Saved { get; private set; }
    public bool SavesOutput { get; }
    /// <summary>The rule for custom ops (built-in ops use <see cref="BackwardRules"/>).</summary>
    public CustomOp? Custom { get; init; }

    public bool NeedsGrad(int input) => Inputs[input].RequiresGrad;

    public void ReleaseSaved()
    {
        foreach (var t in Saved) t.Dispose();
        Saved = [];
    }
}
