using System.Diagnostics;
using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Collectives;

namespace Mdm.Train.Distributed;

/// <summary>
/// The data-parallel gradient exchange overlapped with the backward, as PyTorch's DDP does it: the backward reports
/// each parameter whose gradient is final (<see cref="GradientReady"/>); once every parameter of a bucket
/// (<see cref="BucketPlan"/>) is in, its gradients are packed into one contiguous buffer and its all-reduce starts
/// without waiting, while the backward goes on. Buckets start in plan order on every rank (MPI matches collectives
/// by order), so a bucket that fills early waits for the ones before it; after the first step the plan follows the
/// order that step's backward reported. <see cref="Finish"/> starts whatever the
/// backward did not fill (a step that ended early, an unused parameter), waits, averages and unpacks, before the clip.
/// On MPI the buffers are pinned host arrays (MPI_Iallreduce, polled from the hook and from a background thread:
/// <see cref="InFlightReductions"/>); on NCCL they are device tensors reduced on the backend's stream, which orders
/// them with the kernels.
/// </summary>
public sealed class GradientBuckets : IGradientExchange
{
    readonly Collective collective;
    readonly Variable[] parameters;
    readonly Backend? deviceBackend;
    readonly double megabytes;
    readonly Dictionary<Variable, int> indexOf = new(ReferenceEqualityComparer.Instance);
    readonly InFlightReductions inFlight;
    readonly List<int> startedAtReport = [], reportedOrder = [];
    Bucket[] buckets = [];
    int[] bucketOf = [];
    bool replanned;
    int nextToStart;
    long exposedTicks;

    public GradientBuckets(Collective collective, IEnumerable<Variable> parameters, Backend backend, double megabytes)
    {
        this.collective = collective;
        this.megabytes = megabytes;
        this.parameters = [.. parameters.Where(p => p.RequiresGrad)];
        for (int i = 0; i < this.parameters.Length; i++) indexOf[this.parameters[i]] = i;
        bool onDevice = collective is NcclCollective;
        deviceBackend = onDevice ? backend : null;
        inFlight = new InFlightReductions(pollInBackground: !onDevice && collective.CanProgressFromAnotherThread);
        Plan = Use(BucketPlan.Build([.. this.parameters.Select(p => p.Data.Numel)], megabytes));
    }

    BucketPlan Use(BucketPlan plan)
    {
        foreach (var bucket in buckets) bucket.Dispose();
        buckets = new Bucket[plan.Buckets.Count];
        bucketOf = new int[parameters.Length];
        for (int b = 0; b < buckets.Length; b++)
        {
            if (plan.Elements[b] > int.MaxValue) throw new ArgumentException($"gradient bucket {b}: {plan.Elements[b]} elements exceed one buffer of {int.MaxValue}");
            buckets[b] = new Bucket(plan.Buckets[b], (int)plan.Elements[b], deviceBackend, parameters);
            foreach (int i in plan.Buckets[b]) bucketOf[i] = b;
        }
        return plan;
    }

    /// <summary>The plan in use: reverse registration order until the first step's backward has reported its order.</summary>
    public BucketPlan Plan { get; private set; }

    public string Describe() =>
        $"{buckets.Length} bucket{(buckets.Length == 1 ? "" : "s")} of up to {Plan.Elements.DefaultIfEmpty(0).Max() * sizeof(float) / 1048576.0:0.###} MB overlapping the backward";

    public Action<Variable>? GradientReady => OnGradientReady;

    public double LastSeconds { get; private set; }

    /// <summary>Buckets of the last step whose all-reduce started before the backward reported its last gradient, so
    /// that it was in flight while the backward still computed (the rest started at its end or in <see cref="Finish"/>).</summary>
    public int StartedBeforeLastGradient { get; private set; }

    /// <summary>Buckets of the last step whose all-reduce had completed by the end of the backward (depends on timing).</summary>
    public int CompletedInBackward { get; private set; }

    public int Count => buckets.Length;

    void OnGradientReady(Variable parameter)
    {
        long t0 = Stopwatch.GetTimestamp();
        if (indexOf.TryGetValue(parameter, out int index))
        {
            reportedOrder.Add(index);
            if (--buckets[bucketOf[index]].Missing == 0)
                while (nextToStart < buckets.Length && buckets[nextToStart].Missing == 0)
                {
                    Start(buckets[nextToStart++]);
                    startedAtReport.Add(reportedOrder.Count);
                }
        }
        inFlight.Poll();
        exposedTicks += Stopwatch.GetTimestamp() - t0;
    }

    public void Finish()
    {
        long t0 = Stopwatch.GetTimestamp();
        // Whatever the backward left unfilled starts now, in plan order.
        while (nextToStart < buckets.Length) Start(buckets[nextToStart++]);
        CompletedInBackward = inFlight.WaitAll();
        foreach (var bucket in buckets) bucket.Unpack(collective.WorldSize);
        if (buckets.Length > 0) parameters[0].Backend.Synchronize();
        StartedBeforeLastGradient = startedAtReport.Count(r => r < reportedOrder.Count);
        if (!replanned) Replan();
        LastSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds + Stopwatch.GetElapsedTime(0, exposedTicks).TotalSeconds;
        foreach (var bucket in buckets) bucket.Missing = bucket.Indices.Length;
        startedAtReport.Clear();
        reportedOrder.Clear();
        nextToStart = 0;
        exposedTicks = 0;
    }

    /// <summary>Once, after the first step whose backward rank 0 saw: the plan follows the order rank 0's backward
    /// reported (DDP rebuilds its buckets the same way), so a bucket no longer waits on a parameter finished later.
    /// Every rank takes rank 0's order, so the plans agree even if a rank skipped its backward.</summary>
    void Replan()
    {
        var order = new int[parameters.Length];
        order.AsSpan().Fill(-1);
        if (collective.Rank == 0) reportedOrder.CopyTo(0, order, 0, Math.Min(order.Length, reportedOrder.Count));
        collective.Broadcast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(order.AsSpan()), 0);
        if (order.Length == 0 || order[0] < 0) return;
        replanned = true;
        Plan = Use(BucketPlan.Build([.. parameters.Select(p => p.Data.Numel)], megabytes, BucketPlan.ReportedOrder(order.TakeWhile(i => i >= 0), parameters.Length)));
    }

    void Start(Bucket bucket) => inFlight.Start(() => bucket.PackAndStart(collective));

    public void Dispose()
    {
        inFlight.Dispose();
        foreach (var bucket in buckets) bucket.Dispose();
    }

    /// <summary>One bucket's parameters and flat buffer: a pinned host array, or a device tensor with a view per parameter.</summary>
    sealed class Bucket : IDisposable
    {
        readonly Variable[] members;
        readonly float[] host = [];
        readonly int[] offsets;
        readonly Tensor? device;
        readonly Tensor[] views = [];

        public Bucket(int[] indices, int elements, Backend? deviceBackend, Variable[] all)
        {
            Indices = indices;
            Missing = indices.Length;
            members = [.. indices.Select(i => all[i])];
            offsets = new int[members.Length];
            for (int k = 1; k < members.Length; k++) offsets[k] = offsets[k - 1] + (int)members[k - 1].Data.Numel;
            if (deviceBackend is null) host = GC.AllocateArray<float>(elements, pinned: true);
            else
            {
                device = deviceBackend.Zeros(elements);
                views = [.. members.Select((p, k) => device.Slice(offsets[k], (int)p.Data.Numel).Reshape(p.Shape))];
            }
        }

        public int[] Indices { get; }
        /// <summary>Members whose gradient the backward has not reported final yet.</summary>
        public int Missing;

        /// <summary>A gradient missing this step is packed as zeros (every rank runs the same graph).</summary>
        public PendingCollective PackAndStart(Collective collective)
        {
            if (device is not null)
            {
                for (int k = 0; k < members.Length; k++)
                    if (members[k].Grad is { } grad) Ops.Copy(grad, views[k]);
                    else Ops.Fill(views[k], 0f);
                collective.AllReduceAverage(device);   // NCCL: queued on the stream, returns at once
                return PendingCollective.Done;
            }
            for (int k = 0; k < members.Length; k++)
            {
                var span = host.AsSpan(offsets[k], (int)members[k].Data.Numel);
                if (members[k].Grad is { } grad) grad.CopyTo(span);
                else span.Clear();
            }
            return collective.StartAllReduceSum(host);
        }

        /// <summary>The mean as <see cref="Collective.AllReduceAverage(Span{float})"/> takes it (the sum, then one scale), copied back.</summary>
        public void Unpack(int worldSize)
        {
            if (device is not null)
            {
                for (int k = 0; k < members.Length; k++)
                    if (members[k].Grad is { } grad) Ops.Copy(views[k], grad);
                return;
            }
            if (worldSize > 1) System.Numerics.Tensors.TensorPrimitives.Multiply(host, 1f / worldSize, host);
            for (int k = 0; k < members.Length; k++)
                if (members[k].Grad is { } grad) grad.CopyFrom(host.AsSpan(offsets[k], (int)members[k].Data.Numel));
        }

        public void Dispose() => device?.Dispose();
    }
}
