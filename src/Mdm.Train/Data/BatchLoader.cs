using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Mdm.Train.Data;

/// <summary>
/// A batch: <see cref="Values"/> is [B, ...SampleShape] (e.g. [B, C, H, W]) in [−1, 1]; <see cref="Indices"/> are the
/// dataset indices, <see cref="Flipped"/> whether each was mirrored. It began at (<see cref="Epoch"/>,
/// <see cref="Position"/>); a run that saves (<see cref="NextEpoch"/>, <see cref="NextPosition"/>) resumes right after it.
/// Text datasets add <see cref="Tokens"/> [B, L, D] and <see cref="TokenMask"/> [B, L]. A data-parallel rank's batch is
/// its slice of the global batch: samples [<see cref="FirstSample"/>, FirstSample + <see cref="Size"/>) of it.
/// </summary>
public sealed record Batch(float[] Values, int[] Labels, int[] Indices, bool[] Flipped, int[] Shape,
                           int Epoch, int Position, int NextEpoch, int NextPosition)
{
    public int Size => Labels.Length;
    public int FirstSample { get; init; }
    public float[]? Tokens { get; init; }
    public float[]? TokenMask { get; init; }
    public int TokenLength { get; init; }
    public int TextDim { get; init; }
}

/// <summary>
/// Shuffled epochs of fixed-size batches, decoded ahead by <see cref="Workers"/> threads into a bounded queue of
/// <c>prefetchBatches</c>. Epoch e visits the dataset's own order (<see cref="IEpochOrder"/>) or the permutation drawn
/// from (seed, e); the last partial batch of an epoch is dropped. Flips are drawn from (seed, epoch, position) and
/// mirror the last axis (width) of every sample. Batches come out in order whatever the workers' timing, and
/// depend only on (seed, epoch, position), so a loader started at a saved (epoch, position) yields exactly the
/// batches the original run would have. <see cref="WaitSeconds"/> is how long <see cref="Next"/> blocked.
/// Data-parallel: every rank plans the same global batches of <see cref="BatchSize"/> and loads only its slice
/// (shard r of N holds samples [r·B/N, (r + 1)·B/N) of each); positions stay global, so a run resumes on any world size.
/// </summary>
public sealed class BatchLoader : IDisposable
{
    sealed record Plan(long Sequence, int[] Order, int Epoch, int Position);

    readonly IDataset dataset;
    readonly CancellationTokenSource cancel = new();
    readonly SemaphoreSlim slots;
    readonly Dictionary<long, Batch> done = [];
    readonly Queue<Plan> plans = new();
    readonly Thread[] workers;
    readonly int[] batchShape;
    readonly Stopwatch started = Stopwatch.StartNew();
    ExceptionDispatchInfo? failure;
    long nextToHand, imagesLoaded, busyTicks, waitTicks;
    int planEpoch, planPosition;
    int[] planOrder;
    long planSequence;
    bool disposed;

    /// <summary>The global batch (all ranks together).</summary>
    public int BatchSize { get; }
    /// <summary>The samples of each global batch this rank loads (B / N).</summary>
    public int ShardSize { get; }
    /// <summary>This rank's first sample in each global batch.</summary>
    public int FirstSample { get; }
    public long Seed { get; }
    public bool RandomFlip { get; }
    public int Workers => workers.Length;

    /// <summary>Batches in the epoch the loader started in (the partial tail is dropped).</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>Default worker count: the cores minus one for the trainer, at least one.</summary>
    public static int DefaultWorkers => Math.Max(1, Environment.ProcessorCount - 1);

    public BatchLoader(IDataset dataset, int batchSize, long seed, bool randomFlip = true,
                       int startEpoch = 0, int startPosition = 0, int prefetchBatches = 2, int? workers = null, int shard = 0, int shards = 1)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be positive");
        if (batchSize > dataset.Count)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"batch size exceeds the dataset's {dataset.Count} samples");
        if (startEpoch < 0) throw new ArgumentOutOfRangeException(nameof(startEpoch), startEpoch, "epoch must be ≥ 0");
        if (prefetchBatches < 1) throw new ArgumentOutOfRangeException(nameof(prefetchBatches), prefetchBatches, "prefetch at least one batch");
        if (workers is < 1) throw new ArgumentOutOfRangeException(nameof(workers), workers, "at least one decode worker");
        if (shards < 1 || shard < 0 || shard >= shards) throw new ArgumentOutOfRangeException(nameof(shard), shard, $"shard must lie in [0, {shards})");
        if (batchSize % shards != 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"batch size is not divisible by {shards} shards");
        (this.dataset, BatchSize, Seed, RandomFlip) = (dataset, batchSize, seed, randomFlip);
        (ShardSize, FirstSample) = (batchSize / shards, shard * (batchSize / shards));
        batchShape = [ShardSize, .. dataset.SampleShape];
        planOrder = Order(startEpoch);
        if (planOrder.Length < batchSize)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"batch size exceeds the {planOrder.Length} samples of an epoch");
        if (startPosition < 0 || startPosition >= planOrder.Length)
            throw new ArgumentOutOfRangeException(nameof(startPosition), startPosition, $"position must lie in [0, {planOrder.Length})");
        (planEpoch, planPosition) = (startEpoch, startPosition);
        BatchesPerEpoch = planOrder.Length / batchSize;
        int n = workers ?? DefaultWorkers;
        slots = new SemaphoreSlim(Math.Max(prefetchBatches, n));
        this.workers = [.. Enumerable.Range(0, n).Select(i => new Thread(Work) { IsBackground = true, Name = $"mdm-data-{i}" })];
        foreach (var t in this.workers) t.Start();
    }

    /// <summary>Images decoded per second of worker time, times the workers: what the loader can deliver.</summary>
    public double ImagesPerSecond
    {
        get
        {
            double busy = Interlocked.Read(ref busyTicks) / (double)Stopwatch.Frequency;
            return busy > 0 ? Interlocked.Read(ref imagesLoaded) * Workers / busy : 0;
        }
    }

    public double WaitSeconds => Interlocked.Read(ref waitTicks) / (double)Stopwatch.Frequency;

    /// <summary>The next batch (waits if the workers have not finished it yet); rethrows a dataset error.</summary>
    public Batch Next()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        long t0 = Stopwatch.GetTimestamp();
        lock (done)
        {
            while (!done.ContainsKey(nextToHand) && failure is null) Monitor.Wait(done);
            Interlocked.Add(ref waitTicks, Stopwatch.GetTimestamp() - t0);
            if (done.Remove(nextToHand, out var batch))
            {
                nextToHand++;
                slots.Release();
                return batch;
            }
        }
        failure!.Throw();
        throw new UnreachableException();
    }

    /// <summary>The order in which epoch <paramref name="epoch"/> visits a dataset without its own order.</summary>
    public static int[] Permutation(int count, long seed, int epoch)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        var rng = SplitMix.For(seed, epoch, 0x5348_5546);   // "SHUF"
        for (int i = count - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>Whether the sample at (epoch, position in the epoch's order) is mirrored.</summary>
    public static bool IsFlipped(long seed, int epoch, int position) =>
        (SplitMix.For(seed, epoch, position, 0x464C_4950 /* "FLIP" */).NextUInt64() & 1) != 0;

    int[] Order(int epoch) => dataset is IEpochOrder own ? own.EpochOrder(Seed, epoch) : Permutation(dataset.Count, Seed, epoch);

    /// <summary>The next batch to load, in order (one worker at a time plans; loading runs in parallel).</summary>
    Plan NextPlan()
    {
        lock (plans)
        {
            if (planPosition + BatchSize > planOrder.Length)
            {
                (planEpoch, planPosition) = (planEpoch + 1, 0);
                planOrder = Order(planEpoch);
                if (planOrder.Length < BatchSize)
                    throw new InvalidOperationException($"epoch {planEpoch} has {planOrder.Length} samples, fewer than a batch of {BatchSize}");
            }
            var plan = new Plan(planSequence++, planOrder, planEpoch, planPosition);
            planPosition += BatchSize;
            return plan;
        }
    }

    void Work()
    {
        try
        {
            while (true)
            {
                slots.Wait(cancel.Token);
                var plan = NextPlan();
                long t0 = Stopwatch.GetTimestamp();
                var batch = Load(plan);
                Interlocked.Add(ref busyTicks, Stopwatch.GetTimestamp() - t0);
                Interlocked.Add(ref imagesLoaded, ShardSize);
                lock (done)
                {
                    done[plan.Sequence] = batch;
                    Monitor.PulseAll(done);
                }
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested) { }
        catch (Exception e)
        {
            lock (done)
            {
                failure ??= ExceptionDispatchInfo.Capture(e);
                Monitor.PulseAll(done);
            }
        }
    }

    Batch Load(Plan plan)
    {
        int sampleLength = dataset.SampleLength, width = dataset.SampleShape[^1];
        int count = ShardSize;
        var values = new float[(long)count * sampleLength];
        var labels = new int[count];
        var indices = plan.Order.AsSpan(plan.Position + FirstSample, count).ToArray();
        var flipped = new bool[count];
        var text = dataset as ITextDataset;
        int tokenValues = text is null ? 0 : text.TokenLength * text.TextDim;
        var tokens = text is null ? null : new float[count * tokenValues];
        var mask = text is null ? null : new float[count * text.TokenLength];
        for (int b = 0; b < count && !cancel.IsCancellationRequested; b++)
        {
            var sample = values.AsSpan(b * sampleLength, sampleLength);
            labels[b] = dataset.LoadInto(indices[b], sample);
            text?.LoadText(indices[b], tokens.AsSpan(b * tokenValues, tokenValues), mask.AsSpan(b * text.TokenLength, text.TokenLength));
            flipped[b] = RandomFlip && IsFlipped(Seed, plan.Epoch, plan.Position + FirstSample + b);
            if (flipped[b])
                for (int row = 0; row < sampleLength; row += width) sample.Slice(row, width).Reverse();
        }
        int next = plan.Position + BatchSize;
        bool wraps = next + BatchSize > plan.Order.Length;
        return new Batch(values, labels, indices, flipped, batchShape, plan.Epoch, plan.Position, wraps ? plan.Epoch + 1 : plan.Epoch, wraps ? 0 : next)
        {
            Tokens = tokens, TokenMask = mask, TokenLength = text?.TokenLength ?? 0, TextDim = text?.TextDim ?? 0, FirstSample = FirstSample,
        };
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        cancel.Cancel();
        foreach (var t in workers) t.Join();
        slots.Dispose();
        cancel.Dispose();
    }
}
