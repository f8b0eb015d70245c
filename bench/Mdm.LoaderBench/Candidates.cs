using Mdm.Train.Data;
using NetVips;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using SkiaSharp;
using StbImageSharp;

namespace Mdm.LoaderBench;

/// <summary>One decoder library: file → RGB bytes [size, size, 3], shorter side resized to size and centre-cropped.</summary>
interface ICandidate
{
    string Name { get; }
    byte[] DecodeResize(string path, int size);
}

/// <summary>libvips: thumbnail = shrink-on-load (JPEG DCT scaling) + antialiased reduce + centre crop.</summary>
sealed class VipsCandidate : ICandidate
{
    public string Name => "NetVips 3.2.0 (libvips 8.18)";

    public byte[] DecodeResize(string path, int size)
    {
        using var thumb = NetVips.Image.Thumbnail(path, size, height: size, crop: Enums.Interesting.Centre, failOn: Enums.FailOn.Error);
        using var rgb = thumb.Bands == 3 ? thumb.Copy() : thumb.Colourspace(Enums.Interpretation.Srgb).ExtractBand(0, 3);
        return rgb.WriteToMemory<byte>();
    }
}

/// <summary>SkiaSharp: decode at the smallest DCT scale still ≥ the target, then a Mitchell cubic resize of the centre square.</summary>
sealed class SkiaCandidate : ICandidate
{
    public string Name => "SkiaSharp 3.119.4";

    public byte[] DecodeResize(string path, int size)
    {
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: Skia cannot open it");
        var full = codec.Info;
        float scale = (float)size / Math.Min(full.Width, full.Height);
        var scaled = codec.GetScaledDimensions(Math.Min(1f, scale));
        if (Math.Min(scaled.Width, scaled.Height) < size) scaled = full.Size;
        var info = new SKImageInfo(scaled.Width, scaled.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var decoded = new SKBitmap(info);
        var result = codec.GetPixels(info, decoded.GetPixels());
        if (result is not (SKCodecResult.Success)) throw new InvalidDataException($"{path}: {result}");
        int side = Math.Min(scaled.Width, scaled.Height);
        using var square = new SKBitmap();
        decoded.ExtractSubset(square, SKRectI.Create((scaled.Width - side) / 2, (scaled.Height - side) / 2, side, side));
        using var resized = square.Resize(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKCubicResampler.Mitchell));
        var rgba = resized.Bytes;
        var rgb = new byte[size * size * 3];
        for (int i = 0; i < size * size; i++) { rgb[3 * i] = rgba[4 * i]; rgb[3 * i + 1] = rgba[4 * i + 1]; rgb[3 * i + 2] = rgba[4 * i + 2]; }
        return rgb;
    }
}

/// <summary>ImageSharp 2.x: full decode (no shrink-on-load in 2.x), then bicubic resize in crop mode.</summary>
sealed class ImageSharpCandidate : ICandidate
{
    public string Name => "SixLabors.ImageSharp 2.1.13";

    public byte[] DecodeResize(string path, int size)
    {
        using var image = SixLabors.ImageSharp.Image.Load<Rgb24>(path);
        image.Mutate(x => x.Resize(new ResizeOptions { Size = new Size(size, size), Mode = ResizeMode.Crop, Sampler = KnownResamplers.Bicubic }));
        var rgb = new byte[size * size * 3];
        image.CopyPixelDataTo(rgb);
        return rgb;
    }
}

/// <summary>A managed decoder (StbImageSharp, a port of stb_image) and the repository's own area-averaging resize.</summary>
sealed class StbCandidate : ICandidate
{
    public string Name => "StbImageSharp 2.30.16 + ImageOps";

    public byte[] DecodeResize(string path, int size)
    {
        using var stream = File.OpenRead(path);
        var decoded = ImageResult.FromStream(stream, ColorComponents.RedGreenBlue);
        int w = decoded.Width, h = decoded.Height, n = w * h;
        var planes = new float[3 * n];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) planes[c * n + i] = decoded.Data[3 * i + c];
        return ImageOps.ToBytes(ImageOps.CenterCropResize(planes, 3, h, w, size));
    }
}

/// <summary>libvips thumbnail from bytes already in memory (as a tar shard gives them): no file open per image.</summary>
sealed class VipsBufferCandidate : ICandidate
{
    public string Name => "NetVips from memory";

    public byte[] DecodeResize(string path, int size)
    {
        using var thumb = NetVips.Image.ThumbnailBuffer(File.ReadAllBytes(path), size, height: size, crop: Enums.Interesting.Centre, failOn: Enums.FailOn.Warning);
        return thumb.WriteToMemory<byte>();
    }
}

/// <summary>libvips by hand: JPEG DCT shrink on load (1/2, 1/4, 1/8 kept ≥ the target), antialiased reduce, centre crop.</summary>
sealed class VipsManualCandidate : ICandidate
{
    public string Name => "NetVips manual shrink";

    public byte[] DecodeResize(string path, int size)
    {
        var bytes = File.ReadAllBytes(path);
        int shorter;
        using (var header = NetVips.Image.NewFromBuffer(bytes)) shorter = Math.Min(header.Width, header.Height);
        int shrink = 1;
        while (shrink < 8 && shorter / (shrink * 2) >= size) shrink *= 2;
        using var loaded = NetVips.Image.NewFromBuffer(bytes, access: Enums.Access.Sequential, failOn: Enums.FailOn.Warning, kwargs: new VOption { { "shrink", shrink } });
        double scale = (double)size / Math.Min(loaded.Width, loaded.Height);
        using var resized = loaded.Resize(scale, kernel: Enums.Kernel.Lanczos3);
        int side = Math.Min(resized.Width, resized.Height);
        using var square = resized.ExtractArea((resized.Width - size) / 2, (resized.Height - size) / 2, size, size);
        return square.WriteToMemory<byte>();
    }
}
