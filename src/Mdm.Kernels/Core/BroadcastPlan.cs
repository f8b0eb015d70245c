namespace Mdm.Kernels;

/// <summary>
/// How two inputs are read while writing a contiguous output: the output's dimensions, coalesced to at most
/// <see cref="MaxRank"/> axes and right-aligned (leading axes are 1), and each input's element strides (0 where broadcast).
/// A plain struct of ints so the GPU kernels take it as one argument.
/// </summary>
public struct BroadcastPlan
{
    public const int MaxRank = 6;
    public int D0, D1, D2, D3, D4, D5;
    public int A0, A1, A2, A3, A4, A5;
    public int B0, B1, B2, B3, B4, B5;
    /// <summary>Number of meaningful (coalesced) axes.</summary>
    public int Rank;

    /// <summary>The plan for reading <paramref name="a"/> and <paramref name="b"/> broadcast to <paramref name="outShape"/>.</summary>
    public static BroadcastPlan Create(ReadOnlySpan<int> a, ReadOnlySpan<int> b, ReadOnlySpan<int> outShape, string op)
    {
        long[] sa = Shape.BroadcastStrides(a, outShape), sb = Shape.BroadcastStrides(b, outShape);
        // Drop size-1 axes, then merge neighbours that are contiguous for the output and both inputs.
        var dims = new List<long>(); var la = new List<long>(); var lb = new List<long>();
        for (int i = 0; i < outShape.Length; i++)
        {
            if (outShape[i] == 1) continue;
            int last = dims.Count - 1;
            if (last >= 0 && la[last] == sa[i] * outShape[i] && lb[last] == sb[i] * outShape[i])
            {
                dims[last] *= outShape[i]; la[last] = sa[i]; lb[last] = sb[i];
            }
            else { dims.Add(outShape[i]); la.Add(sa[i]); lb.Add(sb[i]); }
        }
        if (dims.Count > MaxRank)
            throw new ArgumentException($"{op}: broadcasting {Shape.Format(a)} with {Shape.Format(b)} needs {dims.Count} axes after merging; at most {MaxRank} are supported");
        var p = new BroadcastPlan { Rank = dims.Count };
        int off = MaxRank - dims.Count;
        for (int k = 0; k < MaxRank; k++)
        {
            int d = 1, x = 0, y = 0;
            if (k >= off) { d = (int)dims[k - off]; x = (int)la[k - off]; y = (int)lb[k - off]; }
            p.SetAxis(k, d, x, y);
        }
        return p;
    }

    void SetAxis(int k, int d, int a, int b)
    {
        switch (k)
        {
            case 0: D0 = d; A0 = a; B0 = b; break;
            case 1: D1 = d; A1 = a; B1 = b; break;
            case 2: D2 = d; A2 = a; B2 = b; break;
            case 3: D3 = d; A3 = a; B3 = b; break;
            case 4: D4 = d; A4 = a; B4 = b; break;
            default: D5 = d; A5 = a; B5 = b; break;
        }
    }

    /// <summary>True when both inputs are read exactly like the output (no broadcasting at all).</summary>
    public readonly bool IsElementwise => Rank <= 1 && (D5 == 1 || (A5 == 1 && B5 == 1));

    /// <summary>Offsets into a and b of output element <paramref name="i"/>. Used by kernels and the CPU backend alike.</summary>
    public readonly void Offsets(int i, out int oa, out int ob)
    {
        int q = i / D5, r = i - q * D5; oa = r * A5; ob = r * B5; i = q;
        q = i / D4; r = i - q * D4; oa += r * A4; ob += r * B4; i = q;
        q = i / D3; r = i - q * D3; oa += r * A3; ob += r * B3; i = q;
        q = i / D2; r = i - q * D2; oa += r * A2; ob += r * B2; i = q;
        q = i / D1; r = i - q * D1; oa += r * A1; ob += r * B1; i = q;
        oa += i * A0; ob += i * B0;
    }
}
