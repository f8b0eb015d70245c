namespace Mdm.Kernels;

/// <summary>
/// bfloat16 as 16-bit patterns: the top half of an IEEE-754 float. Narrowing rounds to nearest, ties to even;
/// NaN stays NaN (quieted, sign kept), infinities and signed zeros are exact, subnormals round like any other value.
/// The same two functions run inside the GPU kernels, so every backend narrows identically.
/// </summary>
public static class BFloat16
{
    public static float ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    public static ushort FromFloat(float value) => FromBits((uint)BitConverter.SingleToInt32Bits(value));

    /// <summary>Round-to-nearest-even on the raw float bits (kernel-friendly: integer ops only).</summary>
    public static ushort FromBits(uint bits)
    {
        // NaN: exponent all ones and a non-zero mantissa. Truncation could clear the mantissa and make Inf, so force a quiet bit.
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u) return (ushort)((bits >> 16) | 0x0040u);
        uint lsb = (bits >> 16) & 1u;
        uint rounded = bits + 0x7FFFu + lsb;   // overflow into the exponent is the correct rounding (up to Inf)
        return (ushort)(rounded >> 16);
    }

    public static void FromFloat(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"BFloat16.FromFloat: destination holds {dst.Length}, source {src.Length}");
        for (int i = 0; i < src.Length; i++) dst[i] = FromFloat(src[i]);
    }

    public static void ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"BFloat16.ToFloat: destination holds {dst.Length}, source {src.Length}");
        for (int i = 0; i < src.Length; i++) dst[i] = ToFloat(src[i]);
    }
}
