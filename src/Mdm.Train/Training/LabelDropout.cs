using Mdm.Kernels;
using Mdm.Model;

namespace Mdm.Train.Training;

/// <summary>
/// Which samples lose their class label or caption in a micro-step, so guidance has an unconditional model: sample g
/// of the global batch (local index i is g = firstSample + i) drops when the uniform of Philox (seed ^ 0x5EED,
/// step·64 + micro, g) is at most the dropout. Data-parallel ranks holding slices of a batch drop what one process
/// holding the whole batch drops.
/// </summary>
public static class LabelDropout
{
    public static bool[] Dropped(ulong seed, int count, long step, int micro, double dropout, int firstSample = 0)
    {
        var dropped = new bool[count];
        if (dropout <= 0) return dropped;
        for (int i = 0; i < count; i++)
        {
            Philox.Words(seed ^ 0x5EEDUL, (ulong)step * 64 + (ulong)micro, (ulong)(firstSample + i), out uint w, out _, out _, out _);
            dropped[i] = Philox.ToUniform(w) <= dropout;
        }
        return dropped;
    }

    /// <summary>The labels with the dropped ones replaced by the null class.</summary>
    public static int[] Apply(int[] labels, bool[] dropped) => [.. labels.Select((label, i) => dropped[i] ? Conditioning.NullClass : label)];
}
