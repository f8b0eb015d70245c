using Mdm.Kernels;
using Mdm.Model.Config;
using Mdm.Train.Output;

namespace Mdm.Train.Training;

/// <summary>Writes sampler output (tensors high → low) as PNG grids, one per resolution, and disposes the tensors.</summary>
public static class SampleWriter
{
    public static IReadOnlyList<string> Write(string folder, string name, Tensor[] images, ModelConfig model, bool highestOnly)
    {
        Directory.CreateDirectory(folder);
        var files = new List<string>();
        try
        {
            for (int r = 0; r < images.Length; r++)
            {
                if (highestOnly && r > 0) break;
                var t = images[r];
                int n = t.Dim(0), c = t.Dim(1), h = t.Dim(2), w = t.Dim(3);
                var path = Path.Combine(folder, r == 0 ? $"{name}.png" : $"{name}-{h}px.png");
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
