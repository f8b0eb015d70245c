using Mdm.Tests.Harness;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

public class BatchLoaderTests
{
    /// <summary>Sample i: value(index, position) = i + position / 1000 over shape [..., W], so order and flips are visible.</summary>
    sealed class CountingDataset(int count, int[] shape, int failAt = -1) : IDataset
    {
        public int Count => count;
        public IReadOnlyList<int> SampleShape => shape;
        public int NumClasses => 7;
        public IReadOnlyList<string> ClassNames => ["a", "b", "c", "d", "e", "f", "g"];

        public int LoadInto(int index, Span<float> destination)
        {
            if (index == failAt) throw new ImageFormatException($"sample-{index}.png", "broken on purpose");
            for (int i = 0; i < destination.Length; i++) destination[i] = index + i / 1000f;
            return index % 7;
        }
    }

    static List<Batch> Take(BatchLoader loader, int n) => [.. Enumerable.Range(0, n).Select(_ => loader.Next())];

    static void AssertSame(Batch a, Batch b, string what)
    {
        Assert.That(b.Indices, Is.EqualTo(a.Indices), what + " indices");
        Assert.That(b.Flipped, Is.EqualTo(a.Flipped), what + " flips");
        Assert.That(b.Labels, Is.EqualTo(a.Labels), what + " labels");
        Assert.That(b.Values, Is.EqualTo(a.Values), what + " values");
        Assert.That((b.Epoch, b.Position, b.NextEpoch, b.NextPosition), Is.EqualTo((a.Epoch, a.Position, a.NextEpoch, a.NextPosition)), what + " positions");
    }

    /// <summary>Data-parallel shards: rank r of N loads samples [r·B/N, (r + 1)·B/N) of every global batch, with the
    /// whole batch's flips and global positions (so a run resumes on any world size).</summary>
    [Test]
    public void ShardsAreSlicesOfTheGlobalBatches()
    {
        var rng = TestSeed.NewRandom();
        int shards = rng.Next(2, 4), batch = shards * rng.Next(1, 4), count = rng.Next(3 * batch, 6 * batch);
        long seed = rng.NextInt64();
        var set = new CountingDataset(count, [2, 3]);
        using var whole = new BatchLoader(set, batch, seed, workers: 1);
        var loaders = Enumerable.Range(0, shards).Select(r => new BatchLoader(set, batch, seed, workers: 2, shard: r, shards: shards)).ToList();
        try
        {
            int local = batch / shards, sample = 6;
            for (int i = 0; i < 2 * whole.BatchesPerEpoch + 1; i++)
            {
                var want = whole.Next();
                for (int r = 0; r < shards; r++)
                {
                    var got = loaders[r].Next();
                    string what = $"batch {i}, shard {r} of {shards} (global batch {batch}, {count} samples){TestSeed.Describe()}";
                    Assert.That(got.FirstSample, Is.EqualTo(r * local), what);
                    Assert.That(got.Indices, Is.EqualTo(want.Indices[(r * local)..((r + 1) * local)]), what + " indices");
                    Assert.That(got.Flipped, Is.EqualTo(want.Flipped[(r * local)..((r + 1) * local)]), what + " flips");
                    Assert.That(got.Values, Is.EqualTo(want.Values[(r * local * sample)..((r + 1) * local * sample)]), what + " values");
                    Assert.That((got.Epoch, got.Position, got.NextEpoch, got.NextPosition), Is.EqualTo((want.Epoch, want.Position, want.NextEpoch, want.NextPosition)), what + " positions");
                }
            }
        }
        finally { foreach (var l in loaders) l.Dispose(); }
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchLoader(set, batch + 1, seed, shard: 0, shards: batch + 2));
    }

    [Test]
    public void SameSeedSameBatchesAndEpochsArePermutations()
    {
        var rng = TestSeed.NewRandom();
        int count = rng.Next(20, 60), batch = rng.Next(1, 8);
        long seed = rng.NextInt64();
        var set = new CountingDataset(count, [2, 3, 5]);
        using var a = new BatchLoader(set, batch, seed);
        using var b = new BatchLoader(set, batch, seed, prefetchBatches: 5);
        using var other = new BatchLoader(set, batch, seed + 1);
        int perEpoch = count / batch;
        Assert.That(a.BatchesPerEpoch, Is.EqualTo(perEpoch));
        var first = Take(a, 2 * perEpoch);
        var second = Take(b, 2 * perEpoch);
        for (int i = 0; i < first.Count; i++) AssertSame(first[i], second[i], $"batch {i} (count {count}, batch {batch})" + TestSeed.Describe());
        Assert.That(Take(other, perEpoch).SelectMany(x => x.Indices), Is.Not.EqualTo(first.Take(perEpoch).SelectMany(x => x.Indices)), "another seed shuffles differently");

        for (int epoch = 0; epoch < 2; epoch++)
        {
            var batches = first.Skip(epoch * perEpoch).Take(perEpoch).ToList();
            Assert.That(batches.All(x => x.Epoch == epoch), $"epoch {epoch} boundaries" + TestSeed.Describe());
            var seen = batches.SelectMany(x => x.Indices).ToList();
            Assert.That(seen, Is.Unique, $"epoch {epoch} repeats a sample");
            Assert.That(seen, Has.Count.EqualTo(perEpoch * batch));
            Assert.That(seen, Is.EqualTo(BatchLoader.Permutation(count, seed, epoch).Take(perEpoch * batch)));
        }
        foreach (var x in first)
        {
            Assert.That(x.Shape, Is.EqualTo(new[] { batch, 2, 3, 5 }));
            Assert.That(x.Labels, Is.EqualTo(x.Indices.Select(i => i % 7)), "labels belong to their samples");
        }
    }

    [Test]
    public void ResumingAtASavedPositionContinuesExactly()
    {
        var rng = TestSeed.NewRandom();
        int count = rng.Next(10, 40), batch = rng.Next(1, 6);
        long seed = rng.NextInt64();
        var set = new CountingDataset(count, [1, 2, 4]);
        using var original = new BatchLoader(set, batch, seed);
        var run = Take(original, 3 * (count / batch) + 2);   // crosses several epoch boundaries
        foreach (int stop in new[] { 0, rng.Next(run.Count - 1), run.Count - 2, count / batch - 1 })
        {
            var saved = run[stop];
            using var resumed = new BatchLoader(set, batch, seed, startEpoch: saved.NextEpoch, startPosition: saved.NextPosition);
            var rest = Take(resumed, run.Count - stop - 1);
            for (int i = 0; i < rest.Count; i++)
                AssertSame(run[stop + 1 + i], rest[i], $"resumed after batch {stop}, batch {stop + 1 + i}" + TestSeed.Describe());
        }
    }

    [Test]
    public void FlipsMirrorTheWidthAxisOfEverySample()
    {
        var rng = TestSeed.NewRandom();
        int[] shape = [3, 2, 4, 5];   // a clip: F=3, C=2, H=4, W=5; every row of every frame must mirror
        var set = new CountingDataset(64, shape);
        using var loader = new BatchLoader(set, 16, rng.NextInt64());
        int flipped = 0, total = 0;
        for (int n = 0; n < 8; n++)
        {
            var x = loader.Next();
            for (int b = 0; b < x.Size; b++)
            {
                var original = ((IDataset)set).Load(x.Indices[b]).Values;
                var got = x.Values.AsSpan(b * original.Length, original.Length);
                for (int row = 0; row < original.Length; row += 5)
                    for (int w = 0; w < 5; w++)
                        Assert.That(got[row + w], Is.EqualTo(original[row + (x.Flipped[b] ? 4 - w : w)]),
                                    $"batch {n} item {b} row {row / 5} col {w} flipped={x.Flipped[b]}" + TestSeed.Describe());
                flipped += x.Flipped[b] ? 1 : 0;
                total++;
            }
        }
        Assert.That(flipped, Is.InRange(total * 0.3, total * 0.7), $"about half of {total} samples flipped" + TestSeed.Describe());

        using var noFlip = new BatchLoader(set, 16, 1, randomFlip: false);
        Assert.That(Take(noFlip, 4).SelectMany(x => x.Flipped), Is.All.False);
    }

    [Test]
    public void DatasetErrorsReachTheCaller()
    {
        var set = new CountingDataset(12, [1, 2, 2], failAt: 5);
        using var loader = new BatchLoader(set, 4, 3);
        Assert.That(() => { for (int i = 0; i < 10; i++) loader.Next(); },
                    Throws.TypeOf<ImageFormatException>().With.Message.Contains("sample-5.png"));
    }

    [Test]
    public void RejectsImpossibleSettings()
    {
        var set = new CountingDataset(10, [1, 1, 1]);
        Assert.That(() => new BatchLoader(set, 11, 0), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("exceeds the dataset's 10 samples"));
        Assert.That(() => new BatchLoader(set, 0, 0), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => new BatchLoader(set, 2, 0, startPosition: 10), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("[0, 10)"));
        Assert.That(() => new BatchLoader(set, 2, 0, startEpoch: -1), Throws.TypeOf<ArgumentOutOfRangeException>());
        var loader = new BatchLoader(set, 2, 0);
        loader.Dispose();
        Assert.That(() => loader.Next(), Throws.TypeOf<ObjectDisposedException>());
    }

    [Test]
    public void LoadsRealDatasetsInParallel()
    {
        var shapes = new ShapesDataset(16, 48, seed: 5);
        using var loader = new BatchLoader(shapes, 12, TestSeed.NewRandom().Next());
        var x = loader.Next();
        for (int b = 0; b < x.Size; b++)
        {
            var expected = ((IDataset)shapes).Load(x.Indices[b]).Values;
            if (x.Flipped[b])
                for (int row = 0; row < expected.Length; row += 16) Array.Reverse(expected, row, 16);
            Assert.That(x.Values.AsSpan(b * 768, 768).ToArray(), Is.EqualTo(expected), $"item {b}" + TestSeed.Describe());
            Assert.That(x.Labels[b], Is.EqualTo(x.Indices[b] % 6));
        }
    }
}
