using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Model;

/// <summary>Shared helpers of the model tests: config files, random inputs, weight perturbation and copying.</summary>
public static class ModelTestUtil
{
    /// <summary>configs/NAME from the repository root (found by walking up from the test binary).</summary>
    /// <summary>Finds configs/NAME above the test binary (a build in the repo), under $MDM_REPO_ROOT (a published copy
    /// run elsewhere, as on the GPU machine: scripts/gpu/run.sh sets it) or above the working directory.</summary>
    public static string ConfigPath(string name)
    {
        var root = Environment.GetEnvironmentVariable("MDM_REPO_ROOT");
        foreach (var start in new[] { AppContext.BaseDirectory, string.IsNullOrEmpty(root) ? "/" : root, Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var p = Path.Combine(dir.FullName, "configs", name);
                if (File.Exists(p)) return p;
            }
        throw new FileNotFoundException($"configs/{name} not found above {AppContext.BaseDirectory}, $MDM_REPO_ROOT ({root}) or {Directory.GetCurrentDirectory()}");
    }

    public static ModelConfig LoadConfig(string name) => ModelConfig.Load(ConfigPath(name));

    /// <summary>Random values for every zero-initialised parameter (convs closing a residual branch, adapters, conv_out,
    /// norm biases, micro second layers), so the network's output is no longer identically 0.</summary>
    public static void PerturbZeroInit(UNet model, Random rng, float scale = 0.3f, string prefix = "")
    {
        var byName = model.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
        foreach (var s in model.ParameterSpecs())
            if (s.Init == ParameterInit.Zeros && s.Name.StartsWith(prefix, StringComparison.Ordinal))
            {
                float bound = scale / (float)Math.Sqrt(Math.Max(1, s.FanIn)) * 3;
                byName[s.Name].Data.CopyFrom(TestSeed.Uniform(rng, s.Numel, -bound, bound));
            }
    }

    /// <summary>Copies every parameter of <paramref name="from"/> into the parameter of <paramref name="to"/> named
    /// <paramref name="prefix"/> + the same name.</summary>
    public static void CopyParameters(UNet from, UNet to, string prefix)
    {
        var target = to.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
        foreach (var (name, v) in from.NamedParameters())
            target[prefix + name].Data.CopyFrom(v.Data.ToArray());
    }

    public static Variable RandomImage(Backend b, Random rng, int batch, int channels, int size) =>
        new(b.FromArray(TestSeed.Uniform(rng, (long)batch * channels * size * size, -1.5f, 1.5f), batch, channels, size, size));

    /// <summary>Noisy inputs for every resolution of the model (high → low), batch per stream.</summary>
    public static Variable[] RandomStreams(UNet model, Random rng, int batch) =>
        model.Resolutions.Select(r => RandomImage(model.Backend, rng, batch, model.ImageChannels, r)).ToArray();

    public static int[] RandomTimesteps(Random rng, int batch) => Enumerable.Range(0, batch).Select(_ => rng.Next(0, 1000)).ToArray();

    /// <summary>Text conditioning: tokens [B, S, D] (padded positions zeroed, as T5 states are) and a mask with
    /// <paramref name="lengths"/>[b] real tokens.</summary>
    public static Conditioning RandomText(Backend b, Random rng, int[] lengths, int maxTokens, int dim)
    {
        int n = lengths.Length;
        var tok = TestSeed.Uniform(rng, (long)n * maxTokens * dim);
        var mask = new float[n * maxTokens];
        for (int i = 0; i < n; i++)
            for (int s = 0; s < maxTokens; s++)
            {
                if (s < lengths[i]) mask[i * maxTokens + s] = 1;
                else for (int d = 0; d < dim; d++) tok[(i * maxTokens + s) * dim + d] = 0;
            }
        return new Conditioning(Tokens: b.FromArray(tok, n, maxTokens, dim), TokenMask: b.FromArray(mask, n, maxTokens));
    }

    public static void Dispose(Conditioning c) { c.Tokens?.Dispose(); c.TokenMask?.Dispose(); }

    public static float[][] Run(UNet model, Variable[] streams, int[] t, Conditioning c)
    {
        using var _ = Graph.NoGrad();
        using var g = new Graph();
        return model.Forward(streams, t, c).Select(o => o.Data.ToArray()).ToArray();
    }
}
