using Mdm.Kernels;

namespace Mdm.Model.Diffusion;

/// <summary>
/// Where the diffusion code draws its randomness: Philox streams (seed, subsequence) with subsequence
/// = step·<see cref="PurposesPerStep"/> + purpose, so every training step or sampling step, and every use within it
/// (timesteps, the noise of each resolution), reads its own stream, identically on every backend.
/// Training: purpose 0 = timesteps, 1 + r = noise of resolution r, <see cref="DropoutPurpose"/> = the ResNets' dropout
/// masks. Sampling: step slot 0 = initial noise, slot i + 1 =
/// the noise of transition i, purpose r = resolution r.
/// </summary>
public static class DiffusionRandom
{
    public const int PurposesPerStep = 256;

    /// <summary>The training purpose of the ResNets' dropout masks (<see cref="Nn.ResNetDropout"/>).</summary>
    public const int DropoutPurpose = PurposesPerStep - 1;

    public static ulong Stream(ulong step, int purpose)
    {
        if (purpose < 0 || purpose >= PurposesPerStep)
            throw new ArgumentOutOfRangeException(nameof(purpose), $"DiffusionRandom: purpose {purpose} outside [0, {PurposesPerStep})");
        if (step > (ulong.MaxValue - (ulong)purpose) / PurposesPerStep)
            throw new ArgumentOutOfRangeException(nameof(step), $"DiffusionRandom: step {step} too large");
        return step * PurposesPerStep + (ulong)purpose;
    }

    /// <summary>t ~ U{0, …, n − 1} per sample from stream (seed, step, purpose 0): the sample of global index g (in the
    /// whole batch; local index i is g = <paramref name="firstSample"/> + i) is word g%4 of Philox block g/4, mapped by
    /// the multiply-shift ⌊w·n / 2³²⌋.</summary>
    public static int[] Timesteps(int batch, int n, ulong seed, ulong step, int firstSample = 0)
    {
        if (batch < 0) throw new ArgumentOutOfRangeException(nameof(batch), $"DiffusionRandom.Timesteps: batch {batch} < 0");
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"DiffusionRandom.Timesteps: need n >= 1, got {n}");
        if (firstSample < 0) throw new ArgumentOutOfRangeException(nameof(firstSample), $"DiffusionRandom.Timesteps: first sample {firstSample} < 0");
        ulong stream = Stream(step, 0);
        var t = new int[batch];
        for (int i = 0; i < batch; i++)
        {
            int g = firstSample + i;
            Philox.Words(seed, stream, (ulong)(g / 4), out uint w0, out uint w1, out uint w2, out uint w3);
            uint w = (g % 4) switch { 0 => w0, 1 => w1, 2 => w2, _ => w3 };
            t[i] = (int)(((ulong)w * (ulong)n) >> 32);
        }
        return t;
    }

    /// <summary>Fills <paramref name="y"/> with N(0, 1) from stream (seed, step, purpose), on the tensor's device, as
    /// elements [<paramref name="firstElement"/>, …) of the whole batch's fill (a multiple of 4: whole Philox blocks).</summary>
    public static Tensor Normal(Tensor y, ulong seed, ulong step, int purpose, long firstElement = 0)
    {
        if (firstElement < 0 || firstElement % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(firstElement), $"DiffusionRandom.Normal: first element {firstElement} is not a non-negative multiple of 4");
        return Ops.RandomNormal(y, seed, Stream(step, purpose), firstBlock: (ulong)(firstElement / 4));
    }
}

/// <summary>
/// The part of a global batch one process holds in data-parallel training: samples [<see cref="First"/>, First + local
/// count) of <see cref="GlobalBatch"/>. Every per-sample draw of a step (timestep, noise, dropout mask) is keyed by the
/// global index, so N processes holding the N slices draw exactly what one process holding the whole batch draws.
/// </summary>
public readonly record struct BatchSlice(int First, int GlobalBatch)
{
    public static BatchSlice Whole(int batch) => new(0, batch);

    /// <summary>The first value of this slice in a buffer holding <paramref name="valuesPerSample"/> per sample; refused
    /// (naming <paramref name="what"/>) when a slice would start inside a Philox block of 4.</summary>
    public long FirstValue(long valuesPerSample, string what)
    {
        long first = First * valuesPerSample;
        if (first % 4 != 0)
            throw new ArgumentException($"data-parallel: {what} holds {valuesPerSample} values per sample, so the slice from sample {First} " +
                                        "starts inside a Philox block of 4; use a per-process batch that keeps it a multiple of 4");
        return first;
    }
}
