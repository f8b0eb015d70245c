using System.Diagnostics;
using Mdm.LoaderBench;
using NetVips;

// generate DIR N | decode DIR SIZE THREADS [candidate…] | png DIR N THREADS | bad DIR | loader DIR SIZE WORKERS BATCH
NetVips.Cache.Max = 0;
NetVips.NetVips.Concurrency = 1;   // one vips thread per worker: the workers already use every core
ICandidate[] all = [new VipsCandidate(), new VipsBufferCandidate(), new VipsManualCandidate(), new SkiaCandidate(), new ImageSharpCandidate(), new StbCandidate()];
switch (args.FirstOrDefault())
{
    case "generate": Fixtures.GenerateJpegs(args[1], int.Parse(args[2])); break;
    case "decode":
    {
        var files = Directory.GetFiles(args[1], "*.jpg").Order().ToArray();
        int size = int.Parse(args[2]), threads = int.Parse(args[3]);
        var chosen = args.Length > 4 ? all.Where(c => args.Skip(4).Any(a => c.Name.StartsWith(a, StringComparison.OrdinalIgnoreCase))).ToArray() : all;
        foreach (var c in chosen)
        {
            double rate = Timing.Rate(files, threads, f => c.DecodeResize(f, size));
            Console.WriteLine($"{c.Name,-34} {size,4}² {threads} thr  {rate,8:F0} img/s  {rate / threads,6:F0} img/s/core  {Timing.CpuMsPerImage,6:F2} CPU ms/img  load {Timing.Load()}");
        }
        break;
    }
    case "png":
    {
        var files = Fixtures.GeneratePngs(args[1], int.Parse(args[2]));
        int threads = int.Parse(args[3]);
        double own = Timing.Rate(files, threads, f => Mdm.Train.Data.Png.Load(f));
        double vips = Timing.Rate(files, threads, f => { using var im = NetVips.Image.NewFromFile(f, access: Enums.Access.Sequential, failOn: Enums.FailOn.Error); return im.WriteToMemory<byte>(); });
        Console.WriteLine($"PNG full decode 500x375, {threads} thr: own codec {own:F0} img/s, libvips {vips:F0} img/s  load {Timing.Load()}");
        break;
    }
    case "bad": BadFiles.Probe(args[1], all); break;
    case "loader":
    {
        // The training loader itself: one epoch of a JPEG folder (every image decoded once), N workers, batches in order.
        int size = int.Parse(args[2]), workers = int.Parse(args[3]), batch = int.Parse(args[4]);
        var set = Mdm.Train.Data.ImageFolderDataset.Open(args[1], size);
        var sw = Stopwatch.StartNew();
        using var loader = new Mdm.Train.Data.BatchLoader(set, batch, seed: 1, workers: workers, prefetchBatches: 2 * workers);
        for (int b = 0; b < loader.BatchesPerEpoch; b++) loader.Next();
        double rate = loader.BatchesPerEpoch * batch / sw.Elapsed.TotalSeconds;
        Console.WriteLine($"BatchLoader {size,4}² {workers} worker(s) batch {batch}: {rate,6:F0} img/s delivered, {loader.ImagesPerSecond,6:F0} img/s by worker time  load {Timing.Load()}");
        break;
    }
    default: Console.Error.WriteLine("usage: generate DIR N | decode DIR SIZE THREADS [candidate…] | png DIR N THREADS | bad DIR | loader DIR SIZE WORKERS BATCH"); return 2;
}
return 0;

static class Timing
{
    /// <summary>Images per second over all files after a warm-up of 20, on <paramref name="threads"/> workers.</summary>
    public static double Rate(string[] files, int threads, Func<string, object> work)
    {
        foreach (var f in files.Take(20)) work(f);
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        Parallel.ForEach(files, options, f => work(f));
        double seconds = sw.Elapsed.TotalSeconds;
        CpuMsPerImage = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / files.Length;
        return files.Length / seconds;
    }

    /// <summary>CPU time per image of the last <see cref="Rate"/>: steadier than img/s on a shared machine.</summary>
    public static double CpuMsPerImage { get; private set; }

    public static string Load() => File.ReadAllText("/proc/loadavg").Split(' ')[0];
}
