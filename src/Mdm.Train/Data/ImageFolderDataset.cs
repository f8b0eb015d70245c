namespace Mdm.Train.Data;

/// <summary>
/// Images (JPEG, PNG, WebP: <see cref="ImageDecoder"/>) in a folder. With sub-folders, each top-level sub-folder is a
/// class and holds its images at any depth; without sub-folders, the images directly in the folder form one class
/// named after it. Class labels follow the ordinal order of the folder names (for ImageNet's synset folders that is its
/// standard index), or, when the folder holds a synset list (<see cref="SynsetFiles"/>: one "n01440764 description"
/// per line), the line of each folder's name. <c>maxPerClass</c> keeps the first N files of each class (quick runs).
/// Every image is composited on white, its shorter side resized to <see cref="PreparedImageDataset.ImageSize"/> and
/// the centre square kept. Files are decoded on first use and kept as bytes.
/// </summary>
public sealed class ImageFolderDataset : PreparedImageDataset, IFileDataset
{
    public static readonly string[] SynsetFiles = ["synsets.txt", "LOC_synset_mapping.txt"];

    readonly string[] files;
    readonly int[] labels;

    public string Root { get; }
    public IReadOnlyList<string> Files => files;

    ImageFolderDataset(string root, int imageSize, int channels, string[] classNames, string[] files, int[] labels)
        : base(files.Length, imageSize, channels, classNames)
    {
        (Root, this.files, this.labels) = (root, files, labels);
    }

    public static ImageFolderDataset Open(string root, int imageSize, int channels = 3, int? maxPerClass = null)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"image folder '{root}' does not exist");
        if (maxPerClass is <= 0) throw new ArgumentOutOfRangeException(nameof(maxPerClass), maxPerClass, "--max-per-class must be positive");
        var classDirs = Directory.GetDirectories(root).Where(d => !Path.GetFileName(d).StartsWith('.'))
                                 .Order(StringComparer.Ordinal).ToArray();
        var loose = Images(root, SearchOption.TopDirectoryOnly, maxPerClass);
        if (classDirs.Length == 0)
        {
            if (loose.Length == 0) throw new DataFormatException(root, $"the folder holds no images ({string.Join(", ", ImageDecoder.Extensions)})");
            string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)));
            return new ImageFolderDataset(root, imageSize, channels, [name], loose, new int[loose.Length]);
        }
        if (loose.Length > 0)
            throw new DataFormatException(root, $"holds both class sub-folders and {loose.Length} loose image files (e.g. '{Path.GetFileName(loose[0])}'); " +
                                                "move the loose files into a class folder");
        var classNames = classDirs.Select(d => Path.GetFileName(d)!).ToArray();
        var labelOf = SynsetIndex(root, classNames) ?? classNames.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);
        var files = new List<string>();
        var labels = new List<int>();
        foreach (var dir in classDirs)
        {
            var images = Images(dir, SearchOption.AllDirectories, maxPerClass);
            if (images.Length == 0) throw new DataFormatException(dir, $"class folder holds no images ({string.Join(", ", ImageDecoder.Extensions)})");
            files.AddRange(images);
            labels.AddRange(Enumerable.Repeat(labelOf[Path.GetFileName(dir)!], images.Length));
        }
        var names = labelOf.OrderBy(p => p.Value).Select(p => p.Key).ToArray();
        return new ImageFolderDataset(root, imageSize, channels, names, [.. files], [.. labels]);
    }

    /// <summary>Class name → index from the folder's synset list, or null when it has none.</summary>
    static Dictionary<string, int>? SynsetIndex(string root, string[] classNames)
    {
        var path = SynsetFiles.Select(f => Path.Combine(root, f)).FirstOrDefault(File.Exists);
        if (path is null) return null;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            var synset = lines[i].Split((char[])[' ', '\t'], 2)[0].Trim();
            if (synset.Length == 0) throw new DataFormatException(path, $"line {i + 1} is empty (one synset per line, its line is its class index)");
            if (!index.TryAdd(synset, index.Count)) throw new DataFormatException(path, $"line {i + 1}: synset '{synset}' is listed twice");
        }
        var unlisted = classNames.Where(n => !index.ContainsKey(n)).ToArray();
        if (unlisted.Length > 0)
            throw new DataFormatException(path, $"does not list the class folder '{unlisted[0]}'{(unlisted.Length > 1 ? $" (and {unlisted.Length - 1} more)" : "")}");
        return index;
    }

    static string[] Images(string dir, SearchOption depth, int? maxPerClass) =>
        [.. Directory.EnumerateFiles(dir, "*", new EnumerationOptions { RecurseSubdirectories = depth == SearchOption.AllDirectories, MatchCasing = MatchCasing.CaseInsensitive })
                     .Where(ImageDecoder.IsImageFile)
                     .Order(StringComparer.Ordinal)
                     .Take(maxPerClass ?? int.MaxValue)];

    public override int LabelOf(int index)
    {
        DatasetChecks.Index(this, index);
        return labels[index];
    }

    public string SourceOf(int index) => files[index];

    protected override byte[] Prepare(int index) => ImageDecoder.LoadSquare(files[index], ImageSize, Channels);
}
