namespace Mdm.Train.Data;

/// <summary>An 8-bit RGBA image, rows top to bottom, 4 bytes per pixel, not premultiplied.</summary>
public sealed class RgbaImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    public RgbaImage(int width, int height) : this(width, height, new byte[checked(4L * width * height)]) { }

    public RgbaImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}x{height} must be positive");
        if (pixels.LongLength != 4L * width * height)
            throw new ArgumentException($"a {width}x{height} RGBA image needs {4L * width * height} bytes, got {pixels.LongLength}");
        (Width, Height, Pixels) = (width, height, pixels);
    }

    public Span<byte> Pixel(int x, int y) => Pixels.AsSpan((y * Width + x) * 4, 4);

    /// <summary>A copy of the rectangle (x, y, width, height), which must lie inside the image.</summary>
    public RgbaImage Crop(int x, int y, int width, int height)
    {
        if (x < 0 || y < 0 || width <= 0 || height <= 0 || x + width > Width || y + height > Height)
            throw new ArgumentException($"crop ({x},{y}) {width}x{height} does not fit a {Width}x{Height} image");
        var result = new RgbaImage(width, height);
        for (int row = 0; row < height; row++)
            Pixels.AsSpan(((y + row) * Width + x) * 4, width * 4).CopyTo(result.Pixels.AsSpan(row * width * 4));
        return result;
    }
}
