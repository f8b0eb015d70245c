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

    /// <summary>t ~ U{0, …, n − 1} per sample from stream (seed, step, purpose 0): element i is word i%4 of Philox block i/4,
    /// mapped by the multiply-shift ⌊w·n / 2³²⌋.</summary>
    public static int[] Timesteps(int batch, int n, ulong seed, ulong step)
    {
        if (batch < 0) throw new ArgumentOutOfRangeException(nameof(batch), $"DiffusionRandom.Timesteps: batch {batch} < 0");
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"DiffusionRandom.Timesteps: need n >= 1, got {n}");
        ulong stream = Stream(step, 0);
        var t = new int[batch];
        for (int i = 0; i < batch; i++)
        {
            Philox.Words(seed, stream, (ulong)(i / 4), out uint w0, out uint w1, out uint w2, out uint w3);
            uint w = (i % 4) switch { 0 => w0, 1 => w1, 2 => w2, _ => w3 };
            t[i] = (int)(((ulong)w * (ulong)n) >> 32);
        }
        return t;
    }

    /// <summary>Fills <paramref name="y"/> with N(0, 1) from stream (seed, step, purpose), on the tensor's device.</summary>
    public static Tensor Normal(Tensor y, ulong seed, ulong step, int purpose) => Ops.RandomNormal(y, seed, Stream(step, purpose));
}
