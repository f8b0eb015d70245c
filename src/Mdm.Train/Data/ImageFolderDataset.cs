namespace Mdm.Train.Data;

/// <summary>
/// PNG images in a folder. With sub-folders, each top-level sub-folder is a class (labels in ordinal name order) and
/// holds its PNGs at any depth; without sub-folders, the PNGs directly in the folder form one class named after it.
/// Every image is composited on white, centre-cropped to a square and resized to <see cref="ImageSize"/>.
/// Files are decoded on first use and kept as bytes.
/// </summary>
public sealed class ImageFolderDataset : PreparedImageDataset, IFileDataset
{
    readonly string[] files;
    readonly int[] labels;

    public string Root { get; }
    public IReadOnlyList<string> Files => files;

    ImageFolderDataset(string root, int imageSize, int channels, string[] classNames, string[] files, int[] labels)
        : base(files.Length, imageSize, channels, classNames)
    {
        (Root, this.files, this.labels) = (root, files, labels);
    }

    public static ImageFolderDataset Open(string root, int imageSize, int channels = 3)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"image folder '{root}' does not exist");
        var classDirs = Directory.GetDirectories(root).Where(d => !Path.GetFileName(d).StartsWith('.'))
                                 .Order(StringComparer.Ordinal).ToArray();
        var loose = Pngs(root, SearchOption.TopDirectoryOnly);
        if (classDirs.Length == 0)
        {
            if (loose.Length == 0) throw new DataFormatException(root, "the folder holds no PNG files");
            string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)));
            return new ImageFolderDataset(root, imageSize, channels, [name], loose, new int[loose.Length]);
        }
        if (loose.Length > 0)
            throw new DataFormatException(root, $"holds both class sub-folders and {loose.Length} loose PNG files (e.g. '{Path.GetFileName(loose[0])}'); " +
                                                "move the loose files into a class folder");
        var files = new List<string>();
        var labels = new List<int>();
        for (int label = 0; label < classDirs.Length; label++)
        {
            var pngs = Pngs(classDirs[label], SearchOption.AllDirectories);
            if (pngs.Length == 0) throw new DataFormatException(classDirs[label], "class folder holds no PNG files");
            files.AddRange(pngs);
            labels.AddRange(Enumerable.Repeat(label, pngs.Length));
        }
        return new ImageFolderDataset(root, imageSize, channels, [.. classDirs.Select(Path.GetFileName)!], [.. files], [.. labels]);
    }

    static string[] Pngs(string dir, SearchOption depth) =>
        [.. Directory.EnumerateFiles(dir, "*", new EnumerationOptions { RecurseSubdirectories = depth == SearchOption.AllDirectories, MatchCasing = MatchCasing.CaseInsensitive })
                     .Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                     .Order(StringComparer.Ordinal)];

    public override int LabelOf(int index)
    {
        DatasetChecks.Index(this, index);
        return labels[index];
    }

    public string SourceOf(int index) => files[index];

    protected override byte[] Prepare(int index) => FromRgba(Png.Load(files[index]));
}
