namespace Mdm.Train.Data;

/// <summary>The procedural shape classes, in label order.</summary>
public enum ShapeKind { Circle, Square, Triangle, Ring, Cross, Stripes }

/// <summary>One shape to draw: kind, centre and radius in pixels, colours as 0..255 RGB.</summary>
public readonly record struct ShapeSpec(ShapeKind Kind, double CenterX, double CenterY, double Radius,
                                        (byte R, byte G, byte B) Foreground, (byte R, byte G, byte B) Background, bool Horizontal);

/// <summary>
/// Draws one anti-aliased shape on a flat background into float CHW planes in [−1, 1]: each pixel's coverage is
/// the fraction of a 4 × 4 grid of sub-pixel samples inside the shape. Every shape fills the same bounding box, the
/// square of half side <see cref="ShapeSpec.Radius"/> around the centre, so the classes differ in their outline
/// (corners, edges, holes, arms), not in their size.
/// </summary>
public static class ShapeRenderer
{
    public static readonly IReadOnlyList<string> ClassNames = [.. Enum.GetNames<ShapeKind>().Select(n => n.ToLowerInvariant())];
    const int SubSamples = 4;

    public static void Render(in ShapeSpec spec, int size, int channels, Span<float> destination)
    {
        if (destination.Length != channels * size * size)
            throw new ArgumentException($"destination holds {destination.Length} values, expected {channels}x{size}x{size}");
        Span<float> fg = stackalloc float[3], bg = stackalloc float[3];
        ToColour(spec.Foreground, channels, fg);
        ToColour(spec.Background, channels, bg);
        int plane = size * size;
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int inside = 0;
                for (int sy = 0; sy < SubSamples; sy++)
                    for (int sx = 0; sx < SubSamples; sx++)
                    {
                        double px = x + (sx + 0.5) / SubSamples, py = y + (sy + 0.5) / SubSamples;
                        if (Contains(spec, px - spec.CenterX, py - spec.CenterY)) inside++;
                    }
                float coverage = inside / (float)(SubSamples * SubSamples);
                for (int c = 0; c < channels; c++)
                    destination[c * plane + y * size + x] = bg[c] + (fg[c] - bg[c]) * coverage;
            }
    }

    static void ToColour((byte R, byte G, byte B) rgb, int channels, Span<float> result)
    {
        if (channels == 1) result[0] = (0.299f * rgb.R + 0.587f * rgb.G + 0.114f * rgb.B) / 127.5f - 1f;
        else
        {
            result[0] = rgb.R / 127.5f - 1f;
            result[1] = rgb.G / 127.5f - 1f;
            result[2] = rgb.B / 127.5f - 1f;
        }
    }

    /// <summary>Whether the point (dx, dy) relative to the centre (y pointing down) is inside the shape.</summary>
    static bool Contains(in ShapeSpec s, double dx, double dy)
    {
        double r = s.Radius;
        switch (s.Kind)
        {
            case ShapeKind.Circle: return dx * dx + dy * dy <= r * r;
            case ShapeKind.Square: return Math.Abs(dx) <= r && Math.Abs(dy) <= r;
            case ShapeKind.Triangle:
                // Upward isosceles triangle filling the box: apex (0, −r), base from (−r, r) to (r, r).
                return dy <= r && Math.Abs(dx) <= (dy + r) / 2;
            case ShapeKind.Ring:
            {
                double d2 = dx * dx + dy * dy;
                return d2 <= r * r && d2 >= 0.36 * r * r;   // inner radius 0.6 r
            }
            case ShapeKind.Cross:
            {
                // Long thin arms reaching the box's edges, so the cross is not a lump at 16².
                double a = Math.Abs(dx), b = Math.Abs(dy), half = 0.2 * r;
                return (a <= half && b <= r) || (b <= half && a <= r);
            }
            case ShapeKind.Stripes:
            {
                // Three bars separated by two gaps, all 0.4 r wide, filling the box.
                double across = s.Horizontal ? dy : dx, along = s.Horizontal ? dx : dy;
                if (Math.Abs(along) > r || Math.Abs(across) > r) return false;
                int band = Math.Min((int)Math.Floor((across + r) / (2 * r / 5)), 4);
                return band % 2 == 0;
            }
            default: throw new ArgumentOutOfRangeException(nameof(s), s.Kind, "unknown shape");
        }
    }

    /// <summary>
    /// A random foreground and background pair that differ clearly (Euclidean RGB distance ≥ 150 and luma
    /// difference ≥ 50), so the shape is visible in colour and in gray.
    /// </summary>
    public static ((byte, byte, byte) Foreground, (byte, byte, byte) Background) Colours(ref SplitMix rng)
    {
        while (true)
        {
            var fg = ((byte)rng.NextInt(256), (byte)rng.NextInt(256), (byte)rng.NextInt(256));
            var bg = ((byte)rng.NextInt(256), (byte)rng.NextInt(256), (byte)rng.NextInt(256));
            double dr = fg.Item1 - bg.Item1, dg = fg.Item2 - bg.Item2, db = fg.Item3 - bg.Item3;
            double luma = 0.299 * dr + 0.587 * dg + 0.114 * db;
            if (dr * dr + dg * dg + db * db >= 150 * 150 && Math.Abs(luma) >= 50) return (fg, bg);
        }
    }
}
