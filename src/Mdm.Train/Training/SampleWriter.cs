using Mdm.Kernels;
using Mdm.Model.Config;
using Mdm.Train.Output;

namespace Mdm.Train.Training;

/// <summary>Writes sampler output (tensors high → low) as PNG grids, one per resolution, and disposes the tensors.</summary>
public static class SampleWriter
{
    /// <summary>The files `sample --out <paramref name="outFile"/>` writes for the highest resolution (first the main one).</summary>
    public static IReadOnlyList<string> FileNames(string outFile, ModelConfig model)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(outFile))!;
        var name = Path.GetFileNameWithoutExtension(outFile);
        return model.Frames > 1 ? [Path.Combine(folder, $"{name}.gif"), Path.Combine(folder, $"{name}-frames.png")] : [Path.Combine(folder, $"{name}.png")];
    }

    public static IReadOnlyList<string> Write(string folder, string name, Tensor[] images, ModelConfig model, bool highestOnly)
    {
        Directory.CreateDirectory(folder);
        var files = new List<string>();
        try
        {
            if (model.Frames > 1)
            {
                // Video: the highest stream as an animated GIF (one tile per clip) and a PNG strip (a row per clip).
                var t = images[0];
                int frames = model.Frames, clips = t.Dim(0) / frames, c = t.Dim(1), h = t.Dim(2), w = t.Dim(3);
                var data = t.ToArray();
                var gif = Path.Combine(folder, $"{name}.gif");
                int zoom = Math.Max(1, 64 / Math.Max(h, 1));
                Gif.SaveClips(gif, data, clips, frames, c, h, w, scale: zoom);
                var strip = Path.Combine(folder, $"{name}-frames.png");
                FrameStrip.Save(strip, data, clips, frames, c, h, w, scale: zoom);
                files.Add(gif); files.Add(strip);
                if (highestOnly) return files;
                name += "-stream";
            }
            for (int r = 0; r < images.Length; r++)
            {
                if (highestOnly && r > 0) break;
                var t = images[r];
                int n = t.Dim(0), c = t.Dim(1), h = t.Dim(2), w = t.Dim(3);
                var path = Path.Combine(folder, model.Frames > 1 ? $"{name}{r}-{h}px.png" : r == 0 ? $"{name}.png" : $"{name}-{h}px.png");
                // Small images are scaled up (nearest) so the grid is easy to look at.
                int scale = Math.Max(1, 128 / Math.Max(h, 1));
                ImageGrid.Save(path, t.ToArray(), n, c, h, w, scale: scale);
                files.Add(path);
            }
        }
        finally { foreach (var t in images) t.Dispose(); }
        return files;
    }
}
