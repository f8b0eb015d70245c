using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Checkpoints;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Training;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Cli;

/// <summary>`sample` says what it samples and never silently replaces a file it was not asked to write.</summary>
public class SampleCommandTests
{
    /// <summary>A checkpoint of a freshly initialised model of <paramref name="config"/>; <paramref name="poison"/> may
    /// replace the EMA copy of parameter i (return null to keep it).</summary>
    internal static void SaveCheckpoint(RunConfig config, string path, Func<int, Tensor, Tensor?>? poison = null)
    {
        var backend = TestBackends.Get(BackendKind.Cpu);
        var model = ModelFactory.Create(config.Model, backend, seed: 1);
        var replaced = new List<Tensor>();
        try
        {
            var ema = model.NamedParameters().Select((p, i) =>
            {
                var t = poison?.Invoke(i, p.Value.Data);
                if (t is null) return (p.Name, p.Value.Data);
                replaced.Add(t);
                return (p.Name, t);
            }).ToList();
            var checkpoint = new Checkpoint(7).AddModule("model", model).AddTensors("ema", ema);
            checkpoint.Metadata["config"] = config.Json;
            var folder = Path.Combine(Path.GetDirectoryName(path)!, ".save");
            File.Move(new CheckpointWriter(folder, "tmp").Save(checkpoint), path);
        }
        finally { model.DisposeParameters(); foreach (var t in replaced) t.Dispose(); }
    }

    [Test]
    public void AVideoModelAskedForAPngRefusesToReplaceAnExistingGifAndSaysItSamplesClips()
    {
        using var dir = new Data.TempFolder();
        var checkpoint = Path.Combine(dir.Path, "video.safetensors");
        SaveCheckpoint(RunConfig.Preset("video-small"), checkpoint);
        var gif = Path.Combine(dir.Path, "x.gif");
        File.WriteAllText(gif, "an earlier animation");
        var settings = new SampleSettings { Checkpoint = checkpoint, OutFile = Path.Combine(dir.Path, "x.png"), Steps = 1, Count = 1 };
        var backend = TestBackends.Get(BackendKind.Cpu);
        var e = Assert.Throws<UsageException>(() => SampleCommand.Run(settings, backend, TextWriter.Null))!;
        Assert.That(e.Message, Does.Contain("a video model writes").And.Contain("x.gif").And.Contain("which exists"));
        Assert.That(File.ReadAllText(gif), Is.EqualTo("an earlier animation"));

        var log = new StringWriter();
        var files = SampleCommand.Run(settings with { OutFile = Path.Combine(dir.Path, "y.png") }, backend, log);
        Assert.That(log.ToString(), Does.Contain("sampling 1 clips of 8 frames"));
        Assert.That(files, Does.Contain(Path.Combine(dir.Path, "y.gif")));
    }

    [TestCase(2.0, null, "--cfg 2: classifier-free guidance needs a class-conditional model")]
    [TestCase(1.0, 1, "--class 1: the model is not class-conditional")]
    public void GuidanceAndClassesAreRefusedForAModelWithoutClasses(double cfg, int? label, string message)
    {
        using var dir = new Data.TempFolder();
        var checkpoint = Path.Combine(dir.Path, "plain.safetensors");
        SaveCheckpoint(RunConfig.Parse(TrainProcess.TwoStageRunConfig(steps0: 1, steps1: 1), "two-stage"), checkpoint);
        var settings = new SampleSettings { Checkpoint = checkpoint, OutFile = Path.Combine(dir.Path, "s.png"), Cfg = cfg, ClassLabel = label };
        var e = Assert.Throws<UsageException>(() => SampleCommand.Run(settings, TestBackends.Get(BackendKind.Cpu), TextWriter.Null))!;
        Assert.That(e.Message, Does.StartWith(message));
        Assert.That(Directory.GetFiles(dir.Path, "*.png"), Is.Empty, "refused before sampling");
    }

    /// <summary>`sample --graph` on the CPU backend: the sampler's graph runner logs why the denoiser call runs eagerly,
    /// once, and the grids are the bytes the eager run writes.</summary>
    [Test]
    public void GraphOnTheCpuFallsBackWithOneLineAndWritesTheSameSamples()
    {
        using var dir = new Data.TempFolder();
        var checkpoint = Path.Combine(dir.Path, "tiny.safetensors");
        SaveCheckpoint(RunConfig.Parse(TrainProcess.TinyRunConfig(steps: 1), "tiny"), checkpoint);
        var backend = TestBackends.Get(BackendKind.Cpu);
        var eager = new SampleSettings { Checkpoint = checkpoint, OutFile = Path.Combine(dir.Path, "eager.png"), Steps = 3, Count = 2 };
        var eagerFiles = SampleCommand.Run(eager, backend, TextWriter.Null);
        var log = new StringWriter();
        var graphFiles = SampleCommand.Run(eager with { OutFile = Path.Combine(dir.Path, "graph.png"), Graph = true }, backend, log);
        var fallbacks = log.ToString().Split('\n').Where(l => l.StartsWith("mdm: graph: the denoiser call runs eagerly")).ToArray();
        Assert.That(fallbacks, Has.Length.EqualTo(1), log.ToString());
        Assert.That(fallbacks[0], Does.Contain("no CUDA graphs on this backend"));
        Assert.That(graphFiles, Has.Count.EqualTo(eagerFiles.Count));
        for (int i = 0; i < eagerFiles.Count; i++)
            Assert.That(File.ReadAllBytes(graphFiles[i]), Is.EqualTo(File.ReadAllBytes(eagerFiles[i])), $"{graphFiles[i]} against {eagerFiles[i]}");
    }

    /// <summary>The command line takes `--graph` and, on the CPU backend, prints the fallback line.</summary>
    [Test]
    public void GraphFlagIsAccepted()
    {
        using var dir = new Data.TempFolder();
        var checkpoint = Path.Combine(dir.Path, "tiny.safetensors");
        SaveCheckpoint(RunConfig.Parse(TrainProcess.TinyRunConfig(steps: 1), "tiny"), checkpoint);
        var png = Path.Combine(dir.Path, "g.png");
        var r = TrainProcess.Run(dir.Path, TimeSpan.FromMinutes(3), "sample", "--checkpoint", checkpoint, "--steps", "2", "--n", "2", "--graph", "--device", "cpu", "--out", png);
        Assert.That(r.Code, Is.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("mdm: graph: the denoiser call runs eagerly"));
        Assert.That(File.Exists(png));
    }
}
