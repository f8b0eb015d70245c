using Mdm.Train.Data;

namespace Mdm.Train.Output;

/// <summary>Clips [clips, frames, C, H, W] in [−1, 1] as one picture: one row per clip, frames left to right.</summary>
public static class FrameStrip
{
    public static RgbaImage Render(ReadOnlySpan<float> clips, int clipCount, int frames, int channels, int height, int width,
                                   int padding = 2, int scale = 1, byte padColour = 255)
    {
        if (frames <= 0) throw new ArgumentOutOfRangeException(nameof(frames), frames, "clips need at least one frame");
        if (clipCount <= 0) throw new ArgumentOutOfRangeException(nameof(clipCount), clipCount, "need at least one clip");
        if (clips.Length != (long)clipCount * frames * channels * height * width)
            throw new ArgumentException($"clips hold {clips.Length} values, expected [{clipCount}, {frames}, {channels}, {height}, {width}]");
        // [clips, frames, ...] row-major is exactly a grid of clipCount × frames tiles with `frames` columns.
        return ImageGrid.Render(clips, clipCount * frames, channels, height, width, frames, padding, scale, padColour);
    }

    public static void Save(string path, ReadOnlySpan<float> clips, int clipCount, int frames, int channels, int height, int width,
                            int padding = 2, int scale = 1, byte padColour = 255) =>
        Png.Save(path, Render(clips, clipCount, frames, channels, height, width, padding, scale, padColour), withAlpha: false);
}
