using Mdm.Autograd;

namespace Mdm.Model.Nn;

// Mixed precision (bf16 autocast, ml-mdm's fp16=1): inside MixedPrecision.Bf16(), Dense and Conv cast their input and
// weight to bf16 (F.Autocast, F.AutocastWeight; f32 accumulation), as does attention for q, k, v; norm statistics,
// softmax and upsampling stay f32. With BF16 storage a weight's bf16 copy is made once per optimizer step
// (F.AutocastWeight). Under AutocastStorage.Bf16 the operands are BF16 tensors: a GroupNorm that feeds a conv writes
// them itself (autocastOperand), and ForwardLastUse frees an f32 input the caller no longer reads once its bf16 copy
// exists. A conv or linear writes its output in bf16 (autocastOutput), as torch.autocast does, wherever the consumer
// reads bf16 as it is: reshape/permute/split, attention, GELU (bf16 in and out), GroupNorm (the ResNet block's conv1
// → norm2) and a residual add (bf16 + f32 → f32: the attention block's proj_out and ffn.3, the temporal block's
// proj_out, MLP and up conv). Attention's output is bf16 too, and so is the self + cross sum. What stays f32: the
// residual stream itself, conv2's output with the skip added in its epilogue (Conv.ForwardLastUseResidual), conv3 (it
// feeds that epilogue), conv_in, the output head and the time/class embeddings.

/// <summary>torch.nn.Linear: weight [out, in], bias [out]; PyTorch default init or zeros.</summary>
public sealed class Dense : ModelModule
{
    public Dense(ParameterFactory f, int inFeatures, int outFeatures, bool bias = true, bool zeroInit = false) : base(f)
    {
        InFeatures = inFeatures; OutFeatures = outFeatures;
        weight = Declare("weight", zeroInit ? ParameterInit.Zeros : ParameterInit.KaimingUniform, inFeatures, outFeatures, inFeatures);
        if (bias) this.bias = Declare("bias", zeroInit ? ParameterInit.Zeros : ParameterInit.BiasUniform, inFeatures, outFeatures);
    }

    readonly DeclaredParameter weight;
    readonly DeclaredParameter? bias;
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Variable Weight => weight.Value;
    public Variable? Bias => bias?.Value;

    /// <param name="autocastOutput">the output is read only by ops that take bf16 values as they are (reshape,
    /// permute, split, attention, GELU, GroupNorm, a residual add): under autocast it is bf16, as torch.autocast's
    /// linear output is</param>
    public Variable Forward(Variable x, bool autocastOutput = false) =>
        F.Linear(F.Autocast(x), F.AutocastWeight(Weight), Bias, MixedPrecision.Enabled, autocastOutput && MixedPrecision.Enabled);
}

/// <summary>torch.nn.Conv2d with a square kernel, bias, and "same" padding by default; PyTorch default init or zeros.</summary>
public sealed class Conv : ModelModule
{
    public Conv(ParameterFactory f, int inChannels, int outChannels, int kernel, int stride = 1, bool zeroInit = false) : base(f)
    {
        Stride = stride; Padding = kernel / 2;
        int fanIn = inChannels * kernel * kernel;
        weight = Declare("weight", zeroInit ? ParameterInit.Zeros : ParameterInit.KaimingUniform, fanIn, outChannels, inChannels, kernel, kernel);
        bias = Declare("bias", zeroInit ? ParameterInit.Zeros : ParameterInit.BiasUniform, fanIn, outChannels);
    }

    readonly DeclaredParameter weight, bias;
    public int Stride { get; }
    public int Padding { get; }
    public Variable Weight => weight.Value;
    public Variable Bias => bias.Value;

    /// <param name="autocastOutput">as for <see cref="Dense.Forward"/>: under autocast the output is bf16</param>
    public Variable Forward(Variable x, bool autocastOutput = false) =>
        F.Conv2d(F.Autocast(x), F.AutocastWeight(Weight), Bias, Stride, Padding, MixedPrecision.Enabled, autocastOutput && MixedPrecision.Enabled);

    /// <summary><see cref="Forward"/> for an x the caller does not read again (see <see cref="F.AutocastLastUse"/>).</summary>
    public Variable ForwardLastUse(Variable x, bool autocastOutput = false) =>
        F.Conv2d(F.AutocastLastUse(x), F.AutocastWeight(Weight), Bias, Stride, Padding, MixedPrecision.Enabled, autocastOutput && MixedPrecision.Enabled);

    /// <summary><see cref="ForwardLastUse"/>(x) + residual, the residual added in the convolution's epilogue
    /// (<see cref="F.Conv2dResidual"/>).</summary>
    public Variable ForwardLastUseResidual(Variable x, Variable residual) =>
        F.Conv2dResidual(F.AutocastLastUse(x), F.AutocastWeight(Weight), Bias, residual, Stride, Padding, MixedPrecision.Enabled);
}

/// <summary>torch.nn.GroupNorm(groups, channels), eps 1e-5, affine (weight 1, bias 0), plus the fused SiLU/FiLM forms.</summary>
public sealed class GroupNorm : ModelModule
{
    public GroupNorm(ParameterFactory f, int groups, int channels) : base(f)
    {
        Groups = groups;
        weight = Declare("weight", ParameterInit.Ones, channels, channels);
        bias = Declare("bias", ParameterInit.Zeros, channels, channels);
    }

    readonly DeclaredParameter weight, bias;
    public const float Eps = 1e-5f;
    public int Groups { get; }
    public Variable Weight => weight.Value;
    public Variable Bias => bias.Value;

    /// <param name="autocastOperand">y is read only as the operand of a conv or linear: under bf16 autocast storage the
    /// norm writes it as a BF16 tensor itself (no separate cast)</param>
    public Variable Forward(Variable x, bool autocastOperand = false) => F.GroupNorm(x, Groups, Weight, Bias, Eps, Bf16Output(autocastOperand));
    public Variable ForwardSilu(Variable x, bool autocastOperand = false) => F.GroupNormSilu(x, Groups, Weight, Bias, Eps, Bf16Output(autocastOperand));
    /// <summary>SiLU(GroupNorm(x)·(1 + a) + b), a and b [N, C].</summary>
    public Variable ForwardFilmSilu(Variable x, Variable a, Variable b, bool autocastOperand = false) =>
        F.GroupNormFilmSilu(x, Groups, Weight, Bias, a, b, Eps, Bf16Output(autocastOperand));

    static bool Bf16Output(bool autocastOperand) => autocastOperand && MixedPrecision.StoresBf16;
}

/// <summary>torch.nn.LayerNorm(dim), eps 1e-5, affine, over the last axis.</summary>
public sealed class LayerNorm : ModelModule
{
    public LayerNorm(ParameterFactory f, int dim) : base(f)
    {
        weight = Declare("weight", ParameterInit.Ones, dim, dim);
        bias = Declare("bias", ParameterInit.Zeros, dim, dim);
    }

    readonly DeclaredParameter weight, bias;
    public Variable Weight => weight.Value;
    public Variable Bias => bias.Value;

    public Variable Forward(Variable x) => F.LayerNorm(x, Weight, Bias, 1e-5f);
}
