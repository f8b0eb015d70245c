using Mdm.Train.Data;

namespace Mdm.Train.Output;

/// <summary>
/// Lays out a batch of CHW images in [−1, 1] (C = 1 gray or 3 RGB) as one picture: <c>columns</c> per row,
/// <c>padding</c> pixels of <c>padColour</c> around and between tiles, each tile magnified <c>scale</c>× with
/// nearest-neighbour so 16 px samples stay visible. Values are clamped; a non-finite value paints its pixel
/// magenta so a diverged sample cannot pass for a dark one.
/// </summary>
public static class ImageGrid
{
    public static readonly (byte R, byte G, byte B) NonFiniteColour = (255, 0, 255);

    /// <summary>Grid size in pixels for <paramref name="count"/> tiles of height × width.</summary>
    public static (int Width, int Height, int Columns, int Rows) Layout(int count, int height, int width, int columns = 0, int padding = 2, int scale = 1)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "need at least one image");
        if (height <= 0 || width <= 0) throw new ArgumentException($"image size {height}x{width} must be positive");
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "padding must be ≥ 0");
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be ≥ 1");
        if (columns < 0) throw new ArgumentOutOfRangeException(nameof(columns), columns, "columns must be ≥ 0 (0 = automatic)");
        if (columns == 0) columns = (int)Math.Ceiling(Math.Sqrt(count));
        columns = Math.Min(columns, count);
        int rows = (count + columns - 1) / columns;
        long w = (long)columns * width * scale + (columns + 1L) * padding, h = (long)rows * height * scale + (rows + 1L) * padding;
        if (w * h > Png.MaxPixels) throw new ArgumentException($"a {w}x{h} grid is too large; lower the scale or the count");
        return ((int)w, (int)h, columns, rows);
    }

    /// <summary>Renders <paramref name="images"/> = [count, channels, height, width].</summary>
    public static RgbaImage Render(ReadOnlySpan<float> images, int count, int channels, int height, int width,
                                   int columns = 0, int padding = 2, int scale = 1, byte padColour = 255)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 or 3");
        var (gridWidth, gridHeight, cols, _) = Layout(count, height, width, columns, padding, scale);
        if (images.Length != (long)count * channels * height * width)
            throw new ArgumentException($"images hold {images.Length} values, expected [{count}, {channels}, {height}, {width}]");
        var grid = new RgbaImage(gridWidth, gridHeight);
        var px = grid.Pixels;
        for (int i = 0; i < px.Length; i += 4) (px[i], px[i + 1], px[i + 2], px[i + 3]) = (padColour, padColour, padColour, 255);
        int plane = height * width;
        for (int n = 0; n < count; n++)
        {
            var image = images.Slice(n * channels * plane, channels * plane);
            int left = padding + (n % cols) * (width * scale + padding), top = padding + (n / cols) * (height * scale + padding);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    float r = image[y * width + x], g = channels == 3 ? image[plane + y * width + x] : r, b = channels == 3 ? image[2 * plane + y * width + x] : r;
                    var colour = float.IsFinite(r) && float.IsFinite(g) && float.IsFinite(b)
                        ? (ImageOps.ToByte(r), ImageOps.ToByte(g), ImageOps.ToByte(b))
                        : NonFiniteColour;
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                        {
                            int at = ((top + y * scale + dy) * gridWidth + left + x * scale + dx) * 4;
                            (px[at], px[at + 1], px[at + 2]) = colour;
                        }
                }
        }
        return grid;
    }

    /// <summary>Renders and writes an RGB PNG.</summary>
    public static void Save(string path, ReadOnlySpan<float> images, int count, int channels, int height, int width,
                            int columns = 0, int padding = 2, int scale = 1, byte padColour = 255) =>
        Png.Save(path, Render(images, count, channels, height, width, columns, padding, scale, padColour), withAlpha: false);
}
