namespace Mdm.Kernels;

/// <summary>Shape arithmetic for contiguous row-major tensors.</summary>
public static class Shape
{
    public static long Numel(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }

    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(",", shape.ToArray()) + "]";

    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    public static void Validate(ReadOnlySpan<int> shape, string what)
    {
        foreach (int d in shape)
            if (d < 0) throw new ArgumentException($"{what}: negative dimension in shape {Format(shape)}");
    }

    /// <summary>NumPy broadcasting of two shapes; null when they are incompatible.</summary>
    public static int[]? Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1) return null;
            r[i] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Strides of <paramref name="src"/> read as if broadcast to <paramref name="outShape"/> (0 on broadcast axes).</summary>
    public static long[] BroadcastStrides(ReadOnlySpan<int> src, ReadOnlySpan<int> outShape)
    {
        int rank = outShape.Length, off = rank - src.Length;
        var strides = new long[rank];
        long s = 1;
        for (int i = rank - 1; i >= 0; i--)
        {
            int d = i < off ? 1 : src[i - off];
            strides[i] = d == 1 ? 0 : s;
            s *= d;
        }
        return strides;
    }
}
