using Mdm.Train.Data;

namespace Mdm.Tests.Data;

/// <summary>A folder of clips (one sub-folder of PNG frames per clip) loads frames in file-name order.</summary>
public class ClipFolderTests
{
    [Test]
    public void LoadsFramesInOrderAndRejectsShortClips()
    {
        using var dir = new TempFolder();
        for (int clip = 0; clip < 2; clip++)
        {
            var folder = Directory.CreateDirectory(Path.Combine(dir.Path, $"clip{clip}")).FullName;
            for (int f = 0; f < 3; f++)
            {
                var img = new RgbaImage(4, 4);
                byte v = (byte)(60 * f + 10 * clip);
                for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) { var p = img.Pixel(x, y); p[0] = v; p[1] = v; p[2] = v; p[3] = 255; }
                Png.Save(Path.Combine(folder, $"frame{f:D2}.png"), img);
            }
        }
        var set = ClipFolderDataset.Open(dir.Path, frames: 3, imageSize: 4);
        Assert.That(set.Count, Is.EqualTo(2));
        Assert.That(set.SampleShape, Is.EqualTo(new[] { 3, 3, 4, 4 }));
        var sample = ((IDataset)set).Load(1).Values;
        for (int f = 0; f < 3; f++)
            Assert.That(sample[f * 48], Is.EqualTo((60 * f + 10) / 127.5f - 1f).Within(1e-6), $"frame {f} of clip 1");
        var e = Assert.Throws<DataFormatException>(() => ClipFolderDataset.Open(dir.Path, frames: 4, imageSize: 4));
        Assert.That(e!.Message, Does.Contain("clip0").And.Contain("3 PNG frames"));
    }
}
