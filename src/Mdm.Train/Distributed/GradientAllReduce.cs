using System.Diagnostics;
using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Collectives;

namespace Mdm.Train.Distributed;

/// <summary>
/// The data-parallel gradient exchange: every trainable parameter's gradient is packed into one flat buffer on the
/// backend, averaged over the ranks in one all-reduce (NCCL in place on the GPU, MPI through host memory) and unpacked,
/// before the optimizer clips by the global norm. A gradient missing this step is packed as zeros (every rank runs the
/// same graph, so the same ones are missing everywhere). The unbucketed path (--grad-buckets off), kept to compare
/// with <see cref="GradientBuckets"/>.
/// </summary>
public sealed class GradientAllReduce : IGradientExchange
{
    readonly Collective collective;
    readonly Variable[] parameters;
    readonly Tensor bucket;
    readonly Tensor[] views;

    public GradientAllReduce(Collective collective, IEnumerable<Variable> parameters, Backend backend)
    {
        this.collective = collective;
        this.parameters = [.. parameters.Where(p => p.RequiresGrad)];
        long total = this.parameters.Sum(p => p.Data.Numel);
        if (total > int.MaxValue) throw new ArgumentException($"gradient all-reduce: {total} parameters exceed one buffer of {int.MaxValue}");
        bucket = backend.Zeros((int)total);
        views = new Tensor[this.parameters.Length];
        int offset = 0;
        for (int i = 0; i < views.Length; i++)
        {
            int n = (int)this.parameters[i].Data.Numel;
            views[i] = bucket.Slice(offset, n).Reshape(this.parameters[i].Shape);
            offset += n;
        }
    }

    /// <summary>Elements exchanged per step.</summary>
    public long Elements => bucket.Numel;

    /// <summary>Seconds the last <see cref="Finish"/> took (packing, the all-reduce, unpacking; the device synchronised).</summary>
    public double LastSeconds { get; private set; }

    public Action<Variable>? GradientReady => null;

    public string Describe() => "in one all-reduce after the backward";

    /// <summary>Replaces every gradient with its mean over the ranks.</summary>
    public void Finish()
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < parameters.Length; i++)
            if (parameters[i].Grad is { } grad) Ops.Copy(grad, views[i]);
            else Ops.Fill(views[i], 0f);
        collective.AllReduceAverage(bucket);
        for (int i = 0; i < parameters.Length; i++)
            if (parameters[i].Grad is { } grad) Ops.Copy(views[i], grad);
        bucket.Backend.Synchronize();
        LastSeconds = clock.Elapsed.TotalSeconds;
    }

    public void Dispose() => bucket.Dispose();
}
