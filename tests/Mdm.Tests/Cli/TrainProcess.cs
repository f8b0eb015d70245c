using System.Diagnostics;
using System.Text.Json;

namespace Mdm.Tests.Cli;

/// <summary>Runs the real Mdm.Train executable (built next to the tests) as a child process.</summary>
public static class TrainProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "Mdm.Train.dll");

    /// <summary>A tiny run config: NestedUNet 16 → 8, a few steps, a checkpoint every step.</summary>
    public static string TinyRunConfig(int steps, int checkpointEvery = 1) => $$"""
        {
          "model": {
            "imageSize": 16, "imageChannels": 3,
            "nested": {
              "outer": { "resolutionChannels": [8, 8], "numResnetsPerResolution": [1], "attentionLevels": [], "numAttentionLayers": [0],
                         "temporalDim": 32, "microConditioning": "scale:16", "groups": 4, "attentionGroups": 4 },
              "skipNormalization": true,
              "innerUnet": { "resolutionChannels": [8, 16], "numResnetsPerResolution": [1], "attentionLevels": [1], "numAttentionLayers": [1],
                             "temporalDim": 32, "microConditioning": "scale:8", "numClasses": 6, "groups": 4, "attentionGroups": 4 }
            }
          },
          "training": { "lr": 1e-3, "warmupSteps": 2, "batch": 4, "steps": {{steps}}, "checkpointEvery": {{checkpointEvery}},
                        "emaDecay": 0.99, "emaWarmup": true, "labelDropout": 0.25 }
        }
        """;

    /// <summary>Two progressive stages: a 8² UNet, then a NestedUNet 16 → 8 whose inner model is stage 0's.</summary>
    public static string TwoStageRunConfig(int steps0, int steps1) => $$"""
        {
          "model": { "imageSize": 16, "imageChannels": 3, "nested": { "outer": {{Outer}}, "skipNormalization": true, "innerUnet": {{Inner}} } },
          "training": { "lr": 1e-3, "warmupSteps": 2, "batch": 4, "steps": 1, "checkpointEvery": 100, "emaDecay": 0.99, "emaWarmup": true,
            "stages": [
              { "name": "8", "batch": 4, "steps": {{steps0}}, "model": { "imageSize": 8, "imageChannels": 3, "unet": {{Inner}} } },
              { "name": "8-16", "batch": 4, "steps": {{steps1}}, "model": { "imageSize": 16, "imageChannels": 3,
                "nested": { "outer": {{Outer}}, "skipNormalization": true, "innerUnet": {{Inner}} } } }
            ] }
        }
        """;

    const string Outer = """{ "resolutionChannels": [8, 8], "numResnetsPerResolution": [1], "attentionLevels": [], "numAttentionLayers": [0], "temporalDim": 32, "microConditioning": "scale:16", "groups": 4, "attentionGroups": 4 }""";
    const string Inner = """{ "resolutionChannels": [8, 16], "numResnetsPerResolution": [1], "attentionLevels": [1], "numAttentionLayers": [1], "temporalDim": 32, "microConditioning": "scale:8", "groups": 4, "attentionGroups": 4 }""";

    public static Process Start(string workDir, params string[] args) => Start(workDir, null, args);

    /// <param name="environment">Extra environment variables for the child (MDM_DEVICE=cpu unless given).</param>
    public static Process Start(string workDir, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["MDM_DEVICE"] = "cpu";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    /// <summary>Reads stdout until a line matches (returning everything read so far), failing if the process ends first.</summary>
    public static string ReadUntil(Process p, Func<string, bool> match, TimeSpan timeout)
    {
        var seen = new System.Text.StringBuilder();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var line = p.StandardOutput.ReadLine();
            if (line is null) Assert.Fail($"the run ended (exit {(p.WaitForExit(5000) ? p.ExitCode : -1)}) before the expected line\n{seen}\n{p.StandardError.ReadToEnd()}");
            seen.AppendLine(line);
            if (match(line!)) return seen.ToString();
        }
        p.Kill(entireProcessTree: true);
        Assert.Fail($"no matching line within {timeout.TotalSeconds} s\n{seen}");
        return "";
    }

    /// <summary>Sends a POSIX signal (INT, TERM) to the child alone.</summary>
    public static void Signal(Process p, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-s", signal, p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        kill.WaitForExit();
        Assert.That(kill.ExitCode, Is.EqualTo(0), $"kill -s {signal} {p.Id}");
    }

    /// <summary>Waits for the end; returns (exit code, the rest of stdout, stderr).</summary>
    public static (int Code, string Out, string Err) Finish(Process p, TimeSpan timeout)
    {
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"the run did not finish within {timeout.TotalSeconds} s\n{stdout.Result}\n{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Every checkpoint in a run folder opens and passes its checksum; returns their file names and sizes.</summary>
    public static IReadOnlyList<(string Name, byte[] Bytes)> IntactCheckpoints(string runFolder)
    {
        var folder = Path.Combine(runFolder, "checkpoints");
        var files = Directory.Exists(folder) ? Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal).ToList() : [];
        foreach (var f in files)
            Assert.DoesNotThrow(() => { using var r = Mdm.Model.Checkpoints.CheckpointReader.Open(f); }, $"checkpoint {f} is damaged");
        return files.Select(f => (Path.GetFileName(f), File.ReadAllBytes(f))).ToList();
    }

    /// <summary>Runs to the end and returns (exit code, stdout, stderr), failing after a timeout.</summary>
    public static (int Code, string Out, string Err) Run(string workDir, TimeSpan timeout, params string[] args) => Run(workDir, timeout, null, args);

    public static (int Code, string Out, string Err) Run(string workDir, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using var p = Start(workDir, environment, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"Mdm.Train {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s\n{stdout.Result}\n{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>(stage, step, loss) of every metrics line, in file order.</summary>
    public static List<(int Stage, long Step, double Loss)> MetricsLines(string metricsPath) =>
        File.ReadLines(metricsPath).Select(line =>
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            return (root.GetProperty("stage").GetInt32(), root.GetProperty("step").GetInt64(), root.GetProperty("loss").GetDouble());
        }).ToList();

    /// <summary>(step, loss) of every logged step, in order (later lines for the same step replace earlier ones).</summary>
    public static SortedDictionary<long, double> Losses(string metricsPath)
    {
        var r = new SortedDictionary<long, double>();
        foreach (var line in File.ReadLines(metricsPath))
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            r[root.GetProperty("step").GetInt64()] = root.GetProperty("loss").GetDouble();
        }
        return r;
    }
}
