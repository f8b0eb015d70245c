namespace Mdm.Kernels;

/// <summary>
/// Philox-4x32-10 (Salmon et al., 2011), the counter-based generator of Random123/cuRAND/PyTorch.
/// Element i of a stream (seed, offset) is lane i%4 of block (offset + i/4): every backend computes the same numbers
/// independently, in any order. These functions are called both by the CPU backend and inside the ILGPU kernels.
/// </summary>
public static class Philox
{
    const uint M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

    /// <summary>Ten rounds over counter (c0..c3) with key (k0, k1); results replace the counter.</summary>
    public static void Block(ref uint c0, ref uint c1, ref uint c2, ref uint c3, uint k0, uint k1)
    {
        for (int r = 0; r < 10; r++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
            c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
            k0 += W0; k1 += W1;
        }
    }

    /// <summary>The 4 raw words of block <paramref name="block"/> of stream (seed, subsequence).</summary>
    public static void Words(ulong seed, ulong subsequence, ulong block, out uint w0, out uint w1, out uint w2, out uint w3)
    {
        uint c0 = (uint)block, c1 = (uint)(block >> 32), c2 = (uint)subsequence, c3 = (uint)(subsequence >> 32);
        Block(ref c0, ref c1, ref c2, ref c3, (uint)seed, (uint)(seed >> 32));
        w0 = c0; w1 = c1; w2 = c2; w3 = c3;
    }

    /// <summary>Uniform in (0, 1]: the top 24 bits, so every value is exact in float and never 0 (safe for log).</summary>
    public static float ToUniform(uint w) => ((w >> 8) + 1u) * (1.0f / 16777216.0f);

    /// <summary>Box–Muller: two uniforms to two standard normals.</summary>
    public static void ToNormal(uint wa, uint wb, out float z0, out float z1)
    {
        float u = ToUniform(wa), v = ToUniform(wb);
        float r = MathF.Sqrt(-2.0f * MathF.Log(u));
        float theta = 6.2831853071795864f * v;
        z0 = r * MathF.Cos(theta);
        z1 = r * MathF.Sin(theta);
    }
}
