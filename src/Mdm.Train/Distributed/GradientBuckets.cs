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
/// by order), so a bucket that fills early waits for the ones before it. <see cref="Finish"/> starts whatever the
/// backward did not fill (a step that ended early, an unused parameter), waits, averages and unpacks, before the clip.
/// On MPI the buffers are pinned host arrays (MPI_Iallreduce, polled from the hook and from a background thread:
/// <see cref="InFlightReductions"/>); on NCCL they are device tensors reduced on the backend's stream, which orders
/// them with the kernels.
/// </summary>
public sealed class GradientBuckets : IGradientExchange
{
    readonly Collective collective;
    readonly Variable[] parameters;
    readonly Bucket[] buckets;
    readonly Dictionary<Variable, int> bucketOf = new(ReferenceEqualityComparer.Instance);
    readonly InFlightReductions inFlight;
    readonly List<int> startedAtReport = [];
    int nextToStart, reports;
    long exposedTicks;

    public GradientBuckets(Collective collective, IEnumerable<Variable> parameters, Backend backend, double megabytes)
    {
        this.collective = collective;
        this.parameters = [.. parameters.Where(p => p.RequiresGrad)];
        Plan = BucketPlan.Build([.. this.parameters.Select(p => p.Data.Numel)], megabytes);
        bool onDevice = collective is NcclCollective;
        inFlight = new InFlightReductions(pollInBackground: !onDevice && collective.CanProgressFromAnotherThread);
        buckets = new Bucket[Plan.Buckets.Count];
        for (int b = 0; b < buckets.Length; b++)
        {
            if (Plan.Elements[b] > int.MaxValue) throw new ArgumentException($"gradient bucket {b}: {Plan.Elements[b]} elements exceed one buffer of {int.MaxValue}");
            var members = Plan.Buckets[b];
            buckets[b] = new Bucket(members, (int)Plan.Elements[b], onDevice ? backend : null, this.parameters);
            foreach (int i in members) bucketOf[this.parameters[i]] = b;
        }
    }

    public BucketPlan Plan { get; }

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
        reports++;
        if (bucketOf.TryGetValue(parameter, out int b) && --buckets[b].Missing == 0)
            while (nextToStart < buckets.Length && buckets[nextToStart].Missing == 0)
            {
                Start(buckets[nextToStart++]);
                startedAtReport.Add(reports);
            }
        inFlight.Poll();
        exposedTicks += Stopwatch.GetTimestamp() - t0;
    }

    public void Finish()
    {
        long t0 = Stopwatch.GetTimestamp();
        // Whatever the backward left unfilled starts now, in plan order.
        while (nextToStart < buckets.Length) Start(buckets[nextToStart++]);
        int completedEarly = inFlight.WaitAll();
        foreach (var bucket in buckets) bucket.Unpack(collective.WorldSize);
        if (buckets.Length > 0) parameters[0].Backend.Synchronize();
        LastSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds + Stopwatch.GetElapsedTime(0, exposedTicks).TotalSeconds;
        StartedBeforeLastGradient = startedAtReport.Count(r => r < reports);
        CompletedInBackward = completedEarly;
        foreach (var bucket in buckets) bucket.Missing = bucket.Indices.Length;
        startedAtReport.Clear();
        nextToStart = reports = 0;
        exposedTicks = 0;
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
