using Mdm.Autograd;

namespace Mdm.Train.Distributed;

/// <summary>How a data-parallel step averages its gradients over the ranks: <see cref="GradientBuckets"/> during the
/// backward, or <see cref="GradientAllReduce"/> in one all-reduce after it (--grad-buckets off).</summary>
public interface IGradientExchange : IDisposable
{
    /// <summary>The subscriber for the last micro-batch's backward (null: the exchange does not overlap it).</summary>
    Action<Variable>? GradientReady { get; }

    /// <summary>After the backward, on every rank (also when the step's loss is not finite, so the ranks make the same
    /// collective calls): every gradient replaced by its mean over the ranks.</summary>
    void Finish();

    /// <summary>Seconds the last <see cref="Finish"/> and the hooks before it kept the step waiting (exposed, not overlapped).</summary>
    double LastSeconds { get; }

    /// <summary>For the log: how the gradients travel.</summary>
    string Describe();
}
