namespace Mdm.Train.Data;

/// <summary>
/// Pixel preparation shared by the datasets: alpha compositing, centre crop, resizing (exact area averaging when
/// shrinking, bilinear with pixel-centre alignment when enlarging; each axis separately) and the [−1, 1] mapping.
/// Planes are float CHW in 0..255 until <see cref="ToBytes"/> rounds them.
/// </summary>
public static class ImageOps
{
    /// <summary>Composites RGBA over an opaque background colour: three planes [3, H, W] in 0..255.</summary>
    public static float[] CompositeRgb(RgbaImage image, byte backgroundR = 255, byte backgroundG = 255, byte backgroundB = 255)
    {
        int n = image.Width * image.Height;
        var planes = new float[3 * n];
        ReadOnlySpan<byte> bg = [backgroundR, backgroundG, backgroundB];
        var px = image.Pixels;
        for (int i = 0; i < n; i++)
        {
            float a = px[4 * i + 3] / 255f;
            for (int c = 0; c < 3; c++) planes[c * n + i] = px[4 * i + c] * a + bg[c] * (1 - a);
        }
        return planes;
    }

    /// <summary>Rec. 601 luma of [3, H, W] planes: one plane [1, H, W].</summary>
    public static float[] ToGray(ReadOnlySpan<float> rgb, int height, int width)
    {
        int n = height * width;
        var gray = new float[n];
        for (int i = 0; i < n; i++) gray[i] = 0.299f * rgb[i] + 0.587f * rgb[n + i] + 0.114f * rgb[2 * n + i];
        return gray;
    }

    /// <summary>Cuts the largest centred square out of [C, H, W] planes and resizes it to size × size.</summary>
    public static float[] CenterCropResize(ReadOnlySpan<float> planes, int channels, int height, int width, int size)
    {
        int side = Math.Min(height, width);
        int top = (height - side) / 2, left = (width - side) / 2;
        return Resize(planes, channels, height, width, top, left, side, side, size, size);
    }

    /// <summary>
    /// Resizes the window (top, left, windowHeight, windowWidth) of [C, H, W] planes to [C, outHeight, outWidth].
    /// Rows first, then columns; the same weights for every channel.
    /// </summary>
    public static float[] Resize(ReadOnlySpan<float> planes, int channels, int height, int width,
                                 int top, int left, int windowHeight, int windowWidth, int outHeight, int outWidth)
    {
        if (planes.Length != channels * height * width)
            throw new ArgumentException($"planes hold {planes.Length} values, expected {channels}x{height}x{width}");
        if (top < 0 || left < 0 || windowHeight <= 0 || windowWidth <= 0 || top + windowHeight > height || left + windowWidth > width)
            throw new ArgumentException($"window ({top},{left}) {windowHeight}x{windowWidth} does not fit {height}x{width}");
        if (outHeight <= 0 || outWidth <= 0) throw new ArgumentException($"output size {outHeight}x{outWidth} must be positive");
        var rowWeights = Weights(windowHeight, outHeight);
        var colWeights = Weights(windowWidth, outWidth);
        var columnsDone = new float[windowHeight * outWidth];
        var result = new float[channels * outHeight * outWidth];
        for (int c = 0; c < channels; c++)
        {
            var plane = planes.Slice(c * height * width, height * width);
            for (int y = 0; y < windowHeight; y++)
            {
                var src = plane.Slice((top + y) * width + left, windowWidth);
                for (int x = 0; x < outWidth; x++)
                {
                    float sum = 0;
                    foreach (var (i, w) in colWeights[x]) sum += src[i] * w;
                    columnsDone[y * outWidth + x] = sum;
                }
            }
            var dst = result.AsSpan(c * outHeight * outWidth, outHeight * outWidth);
            for (int y = 0; y < outHeight; y++)
                for (int x = 0; x < outWidth; x++)
                {
                    float sum = 0;
                    foreach (var (i, w) in rowWeights[y]) sum += columnsDone[i * outWidth + x] * w;
                    dst[y * outWidth + x] = sum;
                }
        }
        return result;
    }

    /// <summary>For each output index, the (source index, weight) pairs; weights sum to 1.</summary>
    static (int Index, float Weight)[][] Weights(int inSize, int outSize)
    {
        var weights = new (int, float)[outSize][];
        double scale = (double)inSize / outSize;
        for (int j = 0; j < outSize; j++)
        {
            if (outSize < inSize)
            {
                // Area: output pixel j covers source interval [j·scale, (j+1)·scale).
                double lo = j * scale, hi = (j + 1) * scale;
                var list = new List<(int, float)>();
                for (int i = (int)Math.Floor(lo); i < Math.Min(inSize, (int)Math.Ceiling(hi)); i++)
                {
                    double overlap = Math.Min(hi, i + 1) - Math.Max(lo, i);
                    if (overlap > 1e-12) list.Add((i, (float)(overlap / scale)));
                }
                weights[j] = [.. list];
            }
            else
            {
                // Bilinear between pixel centres; the edges repeat (equal sizes give the identity).
                double pos = Math.Clamp((j + 0.5) * scale - 0.5, 0, inSize - 1);
                int i0 = (int)Math.Floor(pos);
                float frac = (float)(pos - i0);
                weights[j] = i0 + 1 < inSize && frac > 0 ? [(i0, 1 - frac), (i0 + 1, frac)] : [(i0, 1f)];
            }
        }
        return weights;
    }

    /// <summary>Rounds 0..255 floats to bytes (clamped).</summary>
    public static byte[] ToBytes(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length];
        for (int i = 0; i < values.Length; i++) bytes[i] = (byte)Math.Clamp(MathF.Round(values[i]), 0, 255);
        return bytes;
    }

    /// <summary>Maps bytes 0..255 to floats −1..1 (0 → −1, 255 → 1).</summary>
    public static void ToSigned(ReadOnlySpan<byte> bytes, Span<float> destination)
    {
        if (destination.Length != bytes.Length)
            throw new ArgumentException($"destination holds {destination.Length} values, the sample has {bytes.Length}");
        for (int i = 0; i < bytes.Length; i++) destination[i] = bytes[i] / 127.5f - 1f;
    }

    /// <summary>Maps a float in −1..1 back to a byte (clamped, rounded).</summary>
    public static byte ToByte(float value) => (byte)Math.Clamp(MathF.Round((value + 1f) * 127.5f), 0, 255);
}
