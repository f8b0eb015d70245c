using Mdm.Kernels;
using Mdm.Tests.Harness;
using Mdm.Train.Data;

namespace Mdm.Tests.Data;

/// <summary>The trainer's device batches, one prefetched ahead: the same batches as the loader alone, in order, with
/// their images intact on the device, and a data error raised where the batch would have been taken.</summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.IlgpuCpu)]
public class DeviceBatchesTests(BackendKind kind) : KernelFixture(kind)
{
    /// <summary>Procedural shapes, with one sample that fails to load when asked.</summary>
    sealed class ShapesWithABrokenSample(int broken) : IDataset
    {
        readonly ShapesDataset shapes = new(8, count: 24, seed: 3);
        public int Count => shapes.Count;
        public IReadOnlyList<int> SampleShape => shapes.SampleShape;
        public int NumClasses => shapes.NumClasses;
        public IReadOnlyList<string> ClassNames => shapes.ClassNames;
        public int LoadInto(int index, Span<float> destination) =>
            index == broken ? throw new ImageFormatException($"sample-{index}.png", "broken on purpose") : shapes.LoadInto(index, destination);
    }

    [Test]
    public void PrefetchedBatchesEqualTheLoadersAndLandIntact()
    {
        long seed = Rng.NextInt64();
        var set = new ShapesWithABrokenSample(broken: -1);
        using var plain = new BatchLoader(set, 4, seed);
        using var loader = new BatchLoader(set, 4, seed);
        using var batches = new DeviceBatches(loader, B);
        for (int step = 0; step < 9; step++)   // past an epoch boundary (6 batches an epoch)
        {
            var expected = plain.Next();
            var (batch, images) = batches.Next();
            batches.Prefetch();   // the next copy runs while this batch is still being read
            Assert.That(batch.Indices, Is.EqualTo(expected.Indices), $"step {step}" + TestSeed.Describe());
            Assert.That(images.Dims.ToArray(), Is.EqualTo(expected.Shape));
            Assert.That(images.ToArray(), Is.EqualTo(expected.Values), $"step {step} images" + TestSeed.Describe());
        }
    }

    [Test]
    public void ADataErrorMetWhilePrefetchingIsRaisedByTheNextTake()
    {
        long seed = Rng.NextInt64();
        var order = BatchLoader.Permutation(24, seed, 0);
        var set = new ShapesWithABrokenSample(broken: order[4]);   // the first sample of the second batch
        using var loader = new BatchLoader(set, 4, seed, workers: 1);
        using var batches = new DeviceBatches(loader, B);
        var (first, _) = batches.Next();
        Assert.That(first.Indices, Is.EqualTo(order[..4]));
        Assert.DoesNotThrow(batches.Prefetch, "the error belongs to the next step");
        var ex = Assert.Throws<ImageFormatException>(() => batches.Next());
        Assert.That(ex!.Message, Does.Contain($"sample-{order[4]}.png"));
    }
}
