namespace Mdm.Train.Distributed;

/// <summary>
/// Which parameters' gradients travel together: parameters in reverse order of registration (the backward finishes
/// the last-used ones first), each bucket closed once it holds at least its byte budget, as PyTorch's DDP groups them:
/// a small first bucket so the first all-reduce starts early, then <see cref="DefaultMegabytes"/>. A parameter larger
/// than the budget gets a bucket of its own.
/// </summary>
public sealed class BucketPlan
{
    public const double DefaultMegabytes = 25, FirstMegabytes = 1, MaxMegabytes = 4096;
    public const string Flag = "--grad-buckets", Off = "off";
    const long BytesPerElement = sizeof(float);

    /// <summary>Each bucket's parameter indices (into the registration order), in the order the buckets are all-reduced.</summary>
    public IReadOnlyList<int[]> Buckets { get; }
    /// <summary>Each bucket's gradient elements.</summary>
    public IReadOnlyList<long> Elements { get; }

    BucketPlan(List<int[]> buckets, List<long> elements) { Buckets = buckets; Elements = elements; }

    public static BucketPlan Build(IReadOnlyList<long> parameterElements, double megabytes)
    {
        if (!(megabytes > 0 && double.IsFinite(megabytes))) throw new ArgumentOutOfRangeException(nameof(megabytes), megabytes, "the bucket size must be a positive number of MB");
        long budget = Bytes(megabytes), first = Math.Min(budget, Bytes(FirstMegabytes));
        var buckets = new List<int[]>();
        var elements = new List<long>();
        var current = new List<int>();
        long bytes = 0;
        for (int i = parameterElements.Count - 1; i >= 0; i--)
        {
            current.Add(i);
            bytes += parameterElements[i] * BytesPerElement;
            if (bytes >= (buckets.Count == 0 ? first : budget)) Close();
        }
        if (current.Count > 0) Close();
        return new BucketPlan(buckets, elements);

        void Close()
        {
            buckets.Add([.. current]);
            elements.Add(bytes / BytesPerElement);
            current.Clear();
            bytes = 0;
        }
    }

    /// <summary>The flag's value: "off" (null), or a size in MB; anything else is refused naming the flag.</summary>
    public static double? ParseFlag(string text)
    {
        if (text.Equals(Off, StringComparison.OrdinalIgnoreCase)) return null;
        if (double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double mb)) return mb;
        throw new Cli.UsageException($"{Flag} must be {Off} or a size in MB (default {DefaultMegabytes}), got '{text}'");
    }

    static long Bytes(double megabytes) => Math.Max(1, (long)(megabytes * 1024 * 1024));
}
