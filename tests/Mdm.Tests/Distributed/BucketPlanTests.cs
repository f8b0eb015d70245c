using Mdm.Tests.Harness;
using Mdm.Train.Cli;
using Mdm.Train.Distributed;

namespace Mdm.Tests.Distributed;

/// <summary>The gradient bucket plan: reverse registration order, every parameter once, a small first bucket, each
/// bucket closed by the parameter that reaches its budget; and the --grad-buckets flag.</summary>
public class BucketPlanTests
{
    const long MiB = 1024 * 1024, Floats = MiB / sizeof(float);

    [Test]
    public void ParametersGoInReverseOrderIntoAOneMegabyteFirstBucketThenBucketsOfTheBudget()
    {
        // 0.5, 0.75, 2, 0.25, 0.25 MB of gradients (f32), registered in this order.
        long[] elements = [Floats / 2, 3 * Floats / 4, 2 * Floats, Floats / 4, Floats / 4];
        var plan = BucketPlan.Build(elements, megabytes: 1.5);
        // First budget 1 MB: 4, 3 (0.5 MB), then 2 reaches it. Budget 1.5 MB: 1 (0.75), 0 (1.25): what is left.
        Assert.That(plan.Buckets, Is.EqualTo(new[] { new[] { 4, 3, 2 }, new[] { 1, 0 } }));
        Assert.That(plan.Elements, Is.EqualTo(new[] { 5 * Floats / 2, 5 * Floats / 4 }));
    }

    [Test]
    public void ABudgetBelowOneMegabyteAlsoBoundsTheFirstBucket()
    {
        var plan = BucketPlan.Build([300, 200, 100, 100], megabytes: 1200.0 / MiB);
        // 400, 800, then 1600 bytes close the first bucket at 1200 bytes (not 1 MB); parameter 0 alone fills the next.
        Assert.That(plan.Buckets, Is.EqualTo(new[] { new[] { 3, 2, 1 }, new[] { 0 } }));
    }

    [Test]
    public void EveryParameterIsInExactlyOneBucketInReverseOrderAndEachBucketStopsAtItsBudget()
    {
        var rng = TestSeed.NewRandom();
        int count = rng.Next(1, 200);
        var elements = Enumerable.Range(0, count).Select(_ => (long)(rng.Next(4) == 0 ? rng.Next(1, 3 * (int)Floats) : rng.Next(1, 5000))).ToArray();
        double megabytes = rng.Next(2) == 0 ? 0.01 + rng.NextDouble() : BucketPlan.DefaultMegabytes;
        var plan = BucketPlan.Build(elements, megabytes);
        string context = $"{count} parameters, {megabytes} MB\n{TestSeed.Describe()}";

        Assert.That(plan.Buckets.SelectMany(b => b), Is.EqualTo(Enumerable.Range(0, count).Reverse()), context);
        long budget = (long)(megabytes * MiB), first = Math.Min(budget, MiB);
        for (int b = 0; b < plan.Buckets.Count; b++)
        {
            long bytes = plan.Buckets[b].Sum(i => elements[i] * sizeof(float));
            long before = bytes - elements[plan.Buckets[b][^1]] * sizeof(float);
            Assert.That(plan.Elements[b] * sizeof(float), Is.EqualTo(bytes), context);
            long limit = b == 0 ? first : budget;
            Assert.That(before, Is.LessThan(limit), $"bucket {b} went on past its budget; {context}");
            if (b < plan.Buckets.Count - 1) Assert.That(bytes, Is.GreaterThanOrEqualTo(limit), $"bucket {b} closed early; {context}");
        }
    }

    [Test]
    public void AReportedOrderFillsTheBucketsThenTheParametersNeverReported()
    {
        var order = BucketPlan.ReportedOrder([3, 1, 3, 9], count: 5);
        Assert.That(order, Is.EqualTo(new[] { 3, 1, 4, 2, 0 }), "repeats and strangers ignored; the rest in reverse registration order");
        var plan = BucketPlan.Build([100, 100, 100, 100, 100], megabytes: 800.0 / MiB, order);
        Assert.That(plan.Buckets, Is.EqualTo(new[] { new[] { 3, 1 }, new[] { 4, 2 }, new[] { 0 } }));
        Assert.Throws<ArgumentException>(() => BucketPlan.Build([1, 2, 3], 1, [0, 1, 1]));
    }

    [TestCase("off", null)]
    [TestCase("OFF", null)]
    [TestCase("25", 25.0)]
    [TestCase("0.002", 0.002)]
    public void TheFlagIsOffOrASizeInMegabytes(string text, double? megabytes) =>
        Assert.That(BucketPlan.ParseFlag(text), Is.EqualTo(megabytes));

    [Test]
    public void AFlagThatIsNeitherIsRefusedNamingIt()
    {
        var e = Assert.Throws<UsageException>(() => BucketPlan.ParseFlag("big"))!;
        Assert.That(e.Message, Is.EqualTo("--grad-buckets must be off or a size in MB (default 25), got 'big'"));
        var range = Assert.Throws<UsageException>(() => new TrainSettings { GradBucketMegabytes = 0 }.Validate())!;
        Assert.That(range.Message, Is.EqualTo("--grad-buckets must be off or a size in MB in (0, 4096], got 0"));
        Assert.That(new TrainSettings().GradBucketMegabytes, Is.EqualTo(BucketPlan.DefaultMegabytes), "buckets are on by default");
    }
}
