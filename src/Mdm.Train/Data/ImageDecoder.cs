using NetVips;

namespace Mdm.Train.Data;

/// <summary>
/// Any supported image file → the square C × S × S bytes the datasets keep, as ml-mdm prepares images: the shorter
/// side resized to S (antialiased), then the centre S × S. JPEG (baseline, progressive, grayscale, CMYK) and WebP go
/// through libvips (JPEG shrinks on load by 1/2, 1/4 or 1/8 while the shorter side stays ≥ S, then a Lanczos-3
/// resize of the centre square); PNG through the own codec and <see cref="ImageOps"/> (exact, and no native library needed).
/// Transparent pixels are composited on white. Warnings count as errors, so a truncated or corrupt file is refused
/// rather than trained on with grey blocks; images over <see cref="Png.MaxPixels"/> are refused from their header.
/// </summary>
public static class ImageDecoder
{
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".webp"];

    static readonly Lazy<string?> VipsProblem = new(StartVips);

    public static bool IsImageFile(string path) => Extensions.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    public static byte[] LoadSquare(string path, int size, int channels) => DecodeSquare(File.ReadAllBytes(path), path, size, channels);

    /// <exception cref="ImageFormatException">the bytes are not a readable JPEG, PNG or WebP image, or too large.</exception>
    public static byte[] DecodeSquare(byte[] file, string source, int size, int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1 (gray) or 3 (RGB)");
        if (file.AsSpan().StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G'])) return Square(Png.Decode(file, source), size, channels);
        string format = file.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8]) ? "JPEG"
                      : file.Length >= 12 && file.AsSpan(0, 4).SequenceEqual("RIFF"u8) && file.AsSpan(8, 4).SequenceEqual("WEBP"u8) ? "WebP"
                      : throw new ImageFormatException(source, "not a JPEG, PNG or WebP file (unknown signature)", format: "image");
        if (VipsProblem.Value is { } problem) throw new ImageFormatException(source, problem, format: format);
        try { return Vips(file, source, format, size, channels); }
        catch (VipsException e) { throw new ImageFormatException(source, Reason(e), e, format); }
    }

    /// <summary>RGBA (the PNG path) → C planes, shorter side resized then centre-cropped, as bytes.</summary>
    public static byte[] Square(RgbaImage image, int size, int channels)
    {
        var rgb = ImageOps.CompositeRgb(image);
        var planes = channels == 1 ? ImageOps.ToGray(rgb, image.Height, image.Width) : rgb;
        return ImageOps.ToBytes(ImageOps.CenterCropResize(planes, channels, image.Height, image.Width, size));
    }

    static byte[] Vips(byte[] file, string source, string format, int size, int channels)
    {
        int width, height;
        using (var header = Image.NewFromBuffer(file, failOn: Enums.FailOn.Warning)) (width, height) = (header.Width, header.Height);
        if ((long)width * height > Png.MaxPixels)
            throw new ImageFormatException(source, $"{width}×{height} pixels is over the limit of {Png.MaxPixels} (a decompression bomb?)", format: format);
        int shrink = 1;
        while (format == "JPEG" && shrink < 8 && Math.Min(width, height) / (shrink * 2) >= size) shrink *= 2;
        var options = format == "JPEG" ? new VOption { { "shrink", shrink } } : null;
        using var loaded = Image.NewFromBuffer(file, access: Enums.Access.Sequential, failOn: Enums.FailOn.Warning, kwargs: options);
        using var srgb = ToSrgb8(loaded);
        // Crop first, in the loaded image's pixels, so the square is the source's centre even after a DCT shrink.
        int side = Math.Min(srgb.Width, srgb.Height);
        using var centre = srgb.ExtractArea((srgb.Width - side) / 2, (srgb.Height - side) / 2, side, side);
        using var square = side == size ? centre.Copy() : centre.Resize((double)size / side, kernel: Enums.Kernel.Lanczos3, vscale: (double)size / side);
        if (square.Width != size || square.Height != size)
            throw new ImageFormatException(source, $"resizing gave {square.Width}×{square.Height} instead of {size}² (an image of {width}×{height})", format: format);
        var interleaved = square.WriteToMemory<byte>();
        var planes = new float[3 * size * size];
        int n = size * size;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) planes[c * n + i] = interleaved[3 * i + c];
        return ImageOps.ToBytes(channels == 1 ? ImageOps.ToGray(planes, size, size) : planes);
    }

    /// <summary>Gray, CMYK or with alpha → three 8-bit sRGB bands, alpha composited on white.</summary>
    static Image ToSrgb8(Image image)
    {
        var steps = new List<Image>();
        try
        {
            var current = image;
            Image Step(Image next) { steps.Add(next); return current = next; }
            if (current.Interpretation == Enums.Interpretation.Cmyk) Step(current.Colourspace(Enums.Interpretation.Srgb));
            if (current.HasAlpha()) Step(current.Flatten(background: [255.0]));
            if (current.Format != Enums.BandFormat.Uchar) Step(current.Cast(Enums.BandFormat.Uchar));
            if (current.Bands == 1) Step(current.Bandjoin(current, current));
            if (current.Bands != 3) throw new VipsException($"{current.Bands} colour bands after conversion to sRGB (expected 3)");
            return ReferenceEquals(current, image) ? image.Copy() : steps[^1];
        }
        finally
        {
            foreach (var step in steps.SkipLast(1)) step.Dispose();
        }
    }

    /// <summary>libvips' own explanation, without its generic first line ("unable to write to memory").</summary>
    static string Reason(VipsException e)
    {
        var lines = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var useful = lines.Skip(1).Where(l => l.Length > 0).Distinct().ToArray();
        return "cannot be decoded: " + (useful.Length > 0 ? string.Join("; ", useful) : lines.FirstOrDefault() ?? "libvips failed");
    }

    /// <summary>One vips thread per call (the loader's workers use the cores), no operation cache, warnings not printed
    /// (they become errors, whose text goes into the message). Null when libvips is usable, else why not.</summary>
    static string? StartVips()
    {
        try
        {
            if (!ModuleInitializer.VipsInitialized)
                return $"JPEG and WebP need libvips, which did not load here ({ModuleInitializer.Exception?.Message ?? "unknown reason"}); " +
                       "the package ships it for linux-x64, elsewhere install libvips 8.x";
            NetVips.NetVips.Concurrency = 1;
            Cache.Max = 0;
            Log.SetLogHandler("VIPS", Enums.LogLevelFlags.Warning, (_, _, _) => { });
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            return $"JPEG and WebP need libvips, which did not load here ({e.Message})";
        }
    }
}
