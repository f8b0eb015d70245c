namespace Mdm.Train.Distributed;

/// <summary>
/// Which parameters' gradients travel together, as PyTorch's DDP groups them: parameters in the order the backward
/// finishes them (at first the reverse of registration, then the order the first step reported), each bucket closed
/// once it holds at least its byte budget: a small first bucket so the first all-reduce starts early, then
/// <see cref="DefaultMegabytes"/>. A parameter larger than the budget gets a bucket of its own.
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

    /// <param name="parameterElements">each parameter's gradient elements, in registration order</param>
    /// <param name="fillOrder">the parameter indices in the order buckets take them (null: reverse registration)</param>
    public static BucketPlan Build(IReadOnlyList<long> parameterElements, double megabytes, IReadOnlyList<int>? fillOrder = null)
    {
        fillOrder ??= [.. Enumerable.Range(0, parameterElements.Count).Reverse()];
        if (fillOrder.Count != parameterElements.Count || fillOrder.Distinct().Count() != fillOrder.Count || fillOrder.Any(i => (uint)i >= (uint)parameterElements.Count))
            throw new ArgumentException($"bucket plan: the fill order is not a permutation of the {parameterElements.Count} parameters", nameof(fillOrder));
        if (!(megabytes > 0 && double.IsFinite(megabytes))) throw new ArgumentOutOfRangeException(nameof(megabytes), megabytes, "the bucket size must be a positive number of MB");
        long budget = Bytes(megabytes), first = Math.Min(budget, Bytes(FirstMegabytes));
        var buckets = new List<int[]>();
        var elements = new List<long>();
        var current = new List<int>();
        long bytes = 0;
        foreach (int i in fillOrder)
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

    /// <summary>The fill order a backward reported: the parameters it reported, in that order, then those it never
    /// reached in reverse registration order (ignoring repeats and indices out of range).</summary>
    public static int[] ReportedOrder(IEnumerable<int> reported, int count)
    {
        var seen = new bool[count];
        var order = new List<int>(count);
        foreach (int i in reported)
            if ((uint)i < (uint)count && !seen[i]) { seen[i] = true; order.Add(i); }
        for (int i = count - 1; i >= 0; i--)
            if (!seen[i]) order.Add(i);
        return [.. order];
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
