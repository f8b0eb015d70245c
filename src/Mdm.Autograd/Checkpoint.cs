using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// Activation checkpointing: run a block without keeping its intermediate values, and recompute them during the
/// backward pass. Trades one extra forward of the block for its activation memory. The recomputation runs under the
/// forward's autocast state, so it produces the same values.
/// </summary>
public static class Checkpoint
{
    /// <param name="block">the block's forward; it must be deterministic (same inputs give the same output)</param>
    /// <param name="inputs">the tensors flowing into the block</param>
    /// <param name="parameters">the parameters the block uses (their gradients accumulate during recomputation)</param>
    public static Variable Run(Func<Variable[], Variable> block, Variable[] inputs, IEnumerable<Variable> parameters)
    {
        Tensor output;
        using (Graph.NoGrad())
        using (new Graph())
        {
            var y = block(inputs);
            // The block may return one of its inputs; the node needs a value it owns.
            output = inputs.Any(i => ReferenceEquals(i, y)) ? Ops.Copy(y.Data) : y.Keep().Data;
        }
        var all = inputs.Concat(parameters).ToArray();
        int inputCount = inputs.Length;
        var (bf16, storage) = (MixedPrecision.Enabled, MixedPrecision.Storage);
        return Record.Op("checkpoint", output, all, (n, g) =>
        {
            using (MixedPrecision.Exactly(bf16, storage)) return Backward(n, g, block, inputCount);
        });
    }

    /// <summary>The backward rule: recompute the block with recording on, backprop the output gradient through it.</summary>
    static Tensor?[] Backward(Node n, Tensor g, Func<Variable[], Variable> block, int inputCount)
    {
        var grads = new Tensor?[n.Inputs.Length];
        // Fresh leaves sharing the inputs' values: gradients for the block's inputs land on them.
        var leaves = n.Inputs.Take(inputCount).Select(v => new Variable(v.Data, v.RequiresGrad)).ToArray();
        using (Graph.EnableGrad())
        using (new Graph())
        {
            var y = block(leaves);
            if (y.RequiresGrad) y.Backward(g);
        }
        for (int i = 0; i < leaves.Length; i++) { grads[i] = leaves[i].Grad; leaves[i].Grad = null; }
        return grads;
    }
}
