using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Mdm.Train.Data;

/// <summary>
/// A batch: <see cref="Values"/> is [B, ...SampleShape] (e.g. [B, C, H, W]) in [−1, 1]; <see cref="Indices"/> are the
/// dataset indices, <see cref="Flipped"/> whether each was mirrored. It began at (<see cref="Epoch"/>,
/// <see cref="Position"/>); a run that saves (<see cref="NextEpoch"/>, <see cref="NextPosition"/>) resumes right after it.
/// </summary>
public sealed record Batch(float[] Values, int[] Labels, int[] Indices, bool[] Flipped, int[] Shape,
                           int Epoch, int Position, int NextEpoch, int NextPosition)
{
    public int Size => Labels.Length;
}

/// <summary>
/// Shuffled epochs of fixed-size batches, loaded ahead on a background task. Epoch e visits the permutation
/// drawn from (seed, e); the last partial batch of an epoch is dropped, so every batch has exactly
/// <see cref="BatchSize"/> samples. Flips are drawn from (seed, epoch, position) and mirror the last axis (width) of
/// every sample (all frames of a clip alike). Everything depends only on (seed, epoch, position), so a loader
/// started at a saved (epoch, position) yields exactly the batches the original run would have.
/// </summary>
public sealed class BatchLoader : IDisposable
{
    readonly IDataset dataset;
    readonly BlockingCollection<Batch> ready;
    readonly CancellationTokenSource cancel = new();
    readonly Task producer;
    readonly int[] batchShape;
    ExceptionDispatchInfo? failure;
    bool disposed;

    public int BatchSize { get; }
    public long Seed { get; }
    public bool RandomFlip { get; }

    /// <summary>Batches per epoch (the partial tail is dropped).</summary>
    public int BatchesPerEpoch => dataset.Count / BatchSize;

    public BatchLoader(IDataset dataset, int batchSize, long seed, bool randomFlip = true,
                       int startEpoch = 0, int startPosition = 0, int prefetchBatches = 2)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be positive");
        if (batchSize > dataset.Count)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"batch size exceeds the dataset's {dataset.Count} samples");
        if (startEpoch < 0) throw new ArgumentOutOfRangeException(nameof(startEpoch), startEpoch, "epoch must be ≥ 0");
        if (startPosition < 0 || startPosition >= dataset.Count)
            throw new ArgumentOutOfRangeException(nameof(startPosition), startPosition, $"position must lie in [0, {dataset.Count})");
        if (prefetchBatches < 1) throw new ArgumentOutOfRangeException(nameof(prefetchBatches), prefetchBatches, "prefetch at least one batch");
        (this.dataset, BatchSize, Seed, RandomFlip) = (dataset, batchSize, seed, randomFlip);
        batchShape = [batchSize, .. dataset.SampleShape];
        ready = new BlockingCollection<Batch>(prefetchBatches);
        producer = Task.Factory.StartNew(() => Produce(startEpoch, startPosition), TaskCreationOptions.LongRunning);
    }

    /// <summary>The next batch (waits if the loader has not finished it yet); rethrows a dataset error.</summary>
    public Batch Next()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (ready.TryTake(out var batch, Timeout.Infinite)) return batch;
        failure?.Throw();
        throw new InvalidOperationException("the batch loader stopped");
    }

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the dataset.</summary>
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

    void Produce(int epoch, int position)
    {
        try
        {
            int[] order = Permutation(dataset.Count, Seed, epoch);
            while (!cancel.IsCancellationRequested)
            {
                if (position + BatchSize > dataset.Count)
                {
                    (epoch, position) = (epoch + 1, 0);
                    order = Permutation(dataset.Count, Seed, epoch);
                }
                var batch = Load(order, epoch, position);
                ready.Add(batch, cancel.Token);
                position += BatchSize;
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested) { }
        // Several samples of one batch may fail at once: the first one tells the user which file to look at.
        catch (AggregateException e) { failure = ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]); }
        catch (Exception e) { failure = ExceptionDispatchInfo.Capture(e); }
        finally { ready.CompleteAdding(); }
    }

    Batch Load(int[] order, int epoch, int position)
    {
        int sampleLength = dataset.SampleLength, width = dataset.SampleShape[^1];
        var values = new float[(long)BatchSize * sampleLength];
        var labels = new int[BatchSize];
        var indices = order.AsSpan(position, BatchSize).ToArray();
        var flipped = new bool[BatchSize];
        Parallel.For(0, BatchSize, new ParallelOptions { CancellationToken = cancel.Token }, b =>
        {
            var sample = values.AsSpan(b * sampleLength, sampleLength);
            labels[b] = dataset.LoadInto(indices[b], sample);
            flipped[b] = RandomFlip && IsFlipped(Seed, epoch, position + b);
            if (flipped[b])
                for (int row = 0; row < sampleLength; row += width) sample.Slice(row, width).Reverse();
        });
        int next = position + BatchSize;
        bool wraps = next + BatchSize > dataset.Count;
        return new Batch(values, labels, indices, flipped, batchShape, epoch, position, wraps ? epoch + 1 : epoch, wraps ? 0 : next);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        cancel.Cancel();
        try { producer.Wait(); } catch (AggregateException) { }
        ready.Dispose();
        cancel.Dispose();
    }
}
