namespace Mdm.Kernels;

/// <summary>
/// Normalisations with PyTorch semantics (torch.nn.functional.group_norm / layer_norm): biased variance, eps inside the
/// square root, affine gamma/beta. Forwards return the saved per-group (per-row) mean and rstd = 1/sqrt(var + eps) that
/// the backwards take back.
/// </summary>
public static partial class Ops
{
    // ---- GroupNorm ----------------------------------------------------------------------------------------------

    /// <summary>
    /// torch.nn.functional.group_norm(x, groups, gamma, beta, eps): x [N, C, *spatial] (rank ≥ 2), gamma and beta [C].
    /// Returns y (shape of x) and the saved mean and rstd [N, groups]. y is F32, or BF16 when <paramref name="yType"/> says so
    /// (autocast's bf16 copy written by the norm itself; the statistics stay F32). x is F32, or BF16 (autocast's conv
    /// output, widened as the kernels read it); the backwards take the same x, with F32 dy and gradients.
    /// </summary>
    public static (Tensor Y, Tensor Mean, Tensor Rstd) GroupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps = 1e-5f,
        Tensor? y = null, Tensor? mean = null, Tensor? rstd = null, DType yType = DType.F32) =>
        GroupNormForwardChecked("GroupNorm", x, groups, gamma, beta, null, null, silu: false, eps, y, mean, rstd, yType);

    /// <summary>Backward of <see cref="GroupNorm"/>: dx (shape of x), dgamma and dbeta [C].</summary>
    public static (Tensor Dx, Tensor Dgamma, Tensor Dbeta) GroupNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma,
        int groups, Tensor? dx = null, Tensor? dgamma = null, Tensor? dbeta = null)
    {
        var r = GroupNormBackwardChecked("GroupNormBackward", dy, x, mean, rstd, gamma, null, null, null, silu: false, groups, dx, dgamma, dbeta, null, null);
        return (r.Dx, r.Dgamma, r.Dbeta);
    }

    /// <summary>
    /// The ResNet block's second norm, fused: y = SiLU( (xhat·gamma + beta)·(1 + a) + b ) with xhat the GroupNorm of x,
    /// a (scale) and b (shift) [N, C] per sample and channel. With a and b both null this is SiLU(GroupNorm(x))
    /// (<see cref="GroupNormSilu"/>). Returns y (F32, or BF16 by <paramref name="yType"/>) and the saved mean and rstd [N, groups].
    /// </summary>
    public static (Tensor Y, Tensor Mean, Tensor Rstd) GroupNormFilmSilu(Tensor x, int groups, Tensor gamma, Tensor beta, Tensor? a, Tensor? b,
        float eps = 1e-5f, Tensor? y = null, Tensor? mean = null, Tensor? rstd = null, DType yType = DType.F32) =>
        GroupNormForwardChecked("GroupNormFilmSilu", x, groups, gamma, beta, a, b, silu: true, eps, y, mean, rstd, yType);

    /// <summary>Backward of <see cref="GroupNormFilmSilu"/>: dx, dgamma [C], dbeta [C], and da, db [N, C] when a and b were given (null otherwise).</summary>
    public static (Tensor Dx, Tensor Dgamma, Tensor Dbeta, Tensor? Da, Tensor? Db) GroupNormFilmSiluBackward(Tensor dy, Tensor x,
        Tensor mean, Tensor rstd, Tensor gamma, Tensor beta, Tensor? a, Tensor? b, int groups,
        Tensor? dx = null, Tensor? dgamma = null, Tensor? dbeta = null, Tensor? da = null, Tensor? db = null) =>
        GroupNormBackwardChecked("GroupNormFilmSiluBackward", dy, x, mean, rstd, gamma, beta, a, b, silu: true, groups, dx, dgamma, dbeta, da, db);

    /// <summary>SiLU(GroupNorm(x)): the block's first norm and the output head (<see cref="GroupNormFilmSilu"/> without FiLM);
    /// y F32, or BF16 by <paramref name="yType"/>.</summary>
    public static (Tensor Y, Tensor Mean, Tensor Rstd) GroupNormSilu(Tensor x, int groups, Tensor gamma, Tensor beta, float eps = 1e-5f,
        Tensor? y = null, Tensor? mean = null, Tensor? rstd = null, DType yType = DType.F32) =>
        GroupNormForwardChecked("GroupNormSilu", x, groups, gamma, beta, null, null, silu: true, eps, y, mean, rstd, yType);

    /// <summary>Backward of <see cref="GroupNormSilu"/>: dx, dgamma [C], dbeta [C].</summary>
    public static (Tensor Dx, Tensor Dgamma, Tensor Dbeta) GroupNormSiluBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma,
        Tensor beta, int groups, Tensor? dx = null, Tensor? dgamma = null, Tensor? dbeta = null)
    {
        var r = GroupNormBackwardChecked("GroupNormSiluBackward", dy, x, mean, rstd, gamma, beta, null, null, silu: true, groups, dx, dgamma, dbeta, null, null);
        return (r.Dx, r.Dgamma, r.Dbeta);
    }

    static (Tensor Y, Tensor Mean, Tensor Rstd) GroupNormForwardChecked(string op, Tensor x, int groups, Tensor gamma, Tensor beta,
        Tensor? a, Tensor? b, bool silu, float eps, Tensor? y, Tensor? mean, Tensor? rstd, DType yType)
    {
        SameBackend(op, x, gamma, beta, a, b, y, mean, rstd);
        RequireF32OrBF16(op, x); RequireF32(op, gamma, beta, a, b);
        CheckEps(op, eps);
        int n = CheckGroupNorm(op, x, groups, gamma, beta, a, b);
        int[] stats = [n, groups];
        if (yType != DType.F32 && yType != DType.BF16)
            throw new ArgumentException($"{op}: y can be F32 or BF16, not {yType.Name()} (x {x.ShapeString})");
        CheckOutput(op, "y", y, x.Dims, yType); CheckOutput(op, "mean", mean, stats); CheckOutput(op, "rstd", rstd, stats);
        NoAliasing(op, [y, mean, rstd], x, gamma, beta, a, b);
        y = Output(op, x, y, x.Dims, yType);
        mean = Output(op, x, mean, stats);
        rstd = Output(op, x, rstd, stats);
        if (n > 0) x.Backend.GroupNormForward(x, gamma, beta, a, b, silu, groups, eps, y, mean, rstd);
        return (y, mean, rstd);
    }

    static (Tensor Dx, Tensor Dgamma, Tensor Dbeta, Tensor? Da, Tensor? Db) GroupNormBackwardChecked(string op, Tensor dy, Tensor x,
        Tensor mean, Tensor rstd, Tensor gamma, Tensor? beta, Tensor? a, Tensor? b, bool silu, int groups,
        Tensor? dx, Tensor? dgamma, Tensor? dbeta, Tensor? da, Tensor? db)
    {
        SameBackend(op, x, dy, mean, rstd, gamma, beta, a, b, dx, dgamma, dbeta, da, db);
        RequireF32OrBF16(op, x); RequireF32(op, dy, mean, rstd, gamma, beta, a, b);
        int n = CheckGroupNorm(op, x, groups, gamma, beta ?? gamma, a, b);
        if (!Shape.Equal(dy.Dims, x.Dims))
            throw new ArgumentException($"{op}: gradient dy {dy.ShapeString} does not match x {x.ShapeString}");
        int[] stats = [n, groups];
        if (!Shape.Equal(mean.Dims, stats) || !Shape.Equal(rstd.Dims, stats))
            throw new ArgumentException($"{op}: saved mean {mean.ShapeString} and rstd {rstd.ShapeString} must be [N, groups] = {Shape.Format(stats)} for x {x.ShapeString}");
        bool film = a is not null;
        if (!film && (da is not null || db is not null))
            throw new ArgumentException($"{op}: da/db outputs given but the forward had no FiLM a, b (x {x.ShapeString})");
        int c = x.Dim(1);
        int[] param = [c], perSample = [n, c];
        CheckOutput(op, "dx", dx, x.Dims); CheckOutput(op, "dgamma", dgamma, param); CheckOutput(op, "dbeta", dbeta, param);
        CheckOutput(op, "da", da, perSample); CheckOutput(op, "db", db, perSample);
        NoAliasing(op, [dx, dgamma, dbeta, da, db], dy, x, mean, rstd, gamma, beta, a, b);
        dx = Output(op, x, dx, x.Dims);
        dgamma = Output(op, x, dgamma, param);
        dbeta = Output(op, x, dbeta, param);
        if (film) { da = Output(op, x, da, perSample); db = Output(op, x, db, perSample); }
        if (n == 0) { x.Backend.Fill(dgamma, 0f); x.Backend.Fill(dbeta, 0f); }
        else x.Backend.GroupNormBackward(dy, x, mean, rstd, gamma, beta ?? gamma, a, b, silu, groups, dx, dgamma, dbeta, da, db);
        return (dx, dgamma, dbeta, da, db);
    }

    /// <summary>Validates x [N, C, *spatial], groups, gamma/beta [C] and FiLM a/b [N, C]; returns N.</summary>
    static int CheckGroupNorm(string op, Tensor x, int groups, Tensor gamma, Tensor beta, Tensor? a, Tensor? b)
    {
        if (x.Rank < 2)
            throw new ArgumentException($"{op}: x must be [N, C, *spatial] (rank >= 2), got {x.ShapeString}");
        int n = x.Dim(0), c = x.Dim(1);
        long spatial = Shape.Numel(x.Dims[2..]);
        if (groups <= 0 || c == 0 || c % groups != 0)
            throw new ArgumentException($"{op}: {groups} groups must be positive and divide the {c} channels of x {x.ShapeString}");
        if (spatial == 0)
            throw new ArgumentException($"{op}: x {x.ShapeString} has an empty spatial extent, so every group would be empty");
        if (gamma.Rank != 1 || gamma.Dim(0) != c || beta.Rank != 1 || beta.Dim(0) != c)
            throw new ArgumentException($"{op}: gamma {gamma.ShapeString} and beta {beta.ShapeString} must be [C] = [{c}] for x {x.ShapeString}");
        if ((a is null) != (b is null))
            throw new ArgumentException($"{op}: FiLM needs both a (scale) and b (shift) or neither; got a {a?.ShapeString ?? "null"}, b {b?.ShapeString ?? "null"} for x {x.ShapeString}");
        if (a is not null && b is not null)
        {
            int[] perSample = [n, c];
            if (!Shape.Equal(a.Dims, perSample) || !Shape.Equal(b.Dims, perSample))
                throw new ArgumentException($"{op}: FiLM a {a.ShapeString} and b {b.ShapeString} must be [N, C] = {Shape.Format(perSample)} for x {x.ShapeString}");
        }
        return n;
    }

    // ---- LayerNorm ----------------------------------------------------------------------------------------------

    /// <summary>
    /// torch.nn.functional.layer_norm(x, [D], gamma, beta, eps) over the last axis: x [..., D], gamma and beta [D].
    /// Returns y (shape of x) and the saved mean and rstd of shape x.shape[:-1].
    /// </summary>
    public static (Tensor Y, Tensor Mean, Tensor Rstd) LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps = 1e-5f,
        Tensor? y = null, Tensor? mean = null, Tensor? rstd = null)
    {
        const string op = "LayerNorm";
        SameBackend(op, x, gamma, beta, y, mean, rstd);
        RequireF32(op, x, gamma, beta);
        CheckEps(op, eps);
        var (rows, d) = CheckLayerNorm(op, x, gamma, beta);
        var stats = x.Dims[..^1];
        CheckOutput(op, "y", y, x.Dims); CheckOutput(op, "mean", mean, stats); CheckOutput(op, "rstd", rstd, stats);
        NoAliasing(op, [y, mean, rstd], x, gamma, beta);
        y = Output(op, x, y, x.Dims);
        mean = Output(op, x, mean, stats);
        rstd = Output(op, x, rstd, stats);
        if (rows > 0) x.Backend.LayerNormForward(x, gamma, beta, rows, d, eps, y, mean, rstd);
        return (y, mean, rstd);
    }

    /// <summary>Backward of <see cref="LayerNorm"/>: dx (shape of x), dgamma and dbeta [D].</summary>
    public static (Tensor Dx, Tensor Dgamma, Tensor Dbeta) LayerNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma,
        Tensor? dx = null, Tensor? dgamma = null, Tensor? dbeta = null)
    {
        const string op = "LayerNormBackward";
        SameBackend(op, x, dy, mean, rstd, gamma, dx, dgamma, dbeta);
        RequireF32(op, dy, x, mean, rstd, gamma);
        var (rows, d) = CheckLayerNorm(op, x, gamma, gamma);
        if (!Shape.Equal(dy.Dims, x.Dims))
            throw new ArgumentException($"{op}: gradient dy {dy.ShapeString} does not match x {x.ShapeString}");
        var stats = x.Dims[..^1];
        if (!Shape.Equal(mean.Dims, stats) || !Shape.Equal(rstd.Dims, stats))
            throw new ArgumentException($"{op}: saved mean {mean.ShapeString} and rstd {rstd.ShapeString} must be {Shape.Format(stats)} for x {x.ShapeString}");
        int[] param = [d];
        CheckOutput(op, "dx", dx, x.Dims); CheckOutput(op, "dgamma", dgamma, param); CheckOutput(op, "dbeta", dbeta, param);
        NoAliasing(op, [dx, dgamma, dbeta], dy, x, mean, rstd, gamma);
        dx = Output(op, x, dx, x.Dims);
        dgamma = Output(op, x, dgamma, param);
        dbeta = Output(op, x, dbeta, param);
        if (rows == 0) { x.Backend.Fill(dgamma, 0f); x.Backend.Fill(dbeta, 0f); }
        else x.Backend.LayerNormBackward(dy, x, mean, rstd, gamma, rows, d, dx, dgamma, dbeta);
        return (dx, dgamma, dbeta);
    }

    static (int Rows, int D) CheckLayerNorm(string op, Tensor x, Tensor gamma, Tensor beta)
    {
        if (x.Rank < 1)
            throw new ArgumentException($"{op}: x must have a last axis to normalise (rank >= 1), got {x.ShapeString}");
        int d = x.Dim(-1);
        if (d == 0)
            throw new ArgumentException($"{op}: the last axis of x {x.ShapeString} is empty, so every row would be empty");
        if (gamma.Rank != 1 || gamma.Dim(0) != d || beta.Rank != 1 || beta.Dim(0) != d)
            throw new ArgumentException($"{op}: gamma {gamma.ShapeString} and beta {beta.ShapeString} must be [D] = [{d}] for x {x.ShapeString}");
        return ((int)(x.Numel / d), d);
    }

    // ---- shared checks ------------------------------------------------------------------------------------------

    static void CheckEps(string op, float eps)
    {
        if (!(eps >= 0) || float.IsInfinity(eps))
            throw new ArgumentException($"{op}: eps must be finite and >= 0, got {eps}");
    }

    /// <summary>
    /// The norm kernels read their inputs again after writing parts of their outputs (statistics first, then the
    /// normalised values), so an output may overlap no input and no other output.
    /// </summary>
    static void NoAliasing(string op, Tensor?[] outputs, params Tensor?[] inputs)
    {
        for (int i = 0; i < outputs.Length; i++)
        {
            var o = outputs[i];
            if (o is null) continue;
            foreach (var t in inputs.Concat(outputs.Skip(i + 1)))
                if (t is not null && ReferenceEquals(o.Storage, t.Storage)
                    && o.Offset * o.DType.Size() < (t.Offset + t.Numel) * t.DType.Size() && t.Offset * t.DType.Size() < (o.Offset + o.Numel) * o.DType.Size())
                    throw new ArgumentException($"{op}: output {o.ShapeString} overlaps the memory of {t.ShapeString}; norm outputs must not alias inputs or each other");
        }
    }

    /// <summary>Checks a caller-supplied output before anything is allocated (so a bad one leaks nothing).</summary>
    static void CheckOutput(string op, string name, Tensor? output, ReadOnlySpan<int> shape, DType type = DType.F32)
    {
        if (output is null) return;
        if (!Shape.Equal(output.Dims, shape))
            throw new ArgumentException($"{op}: output {name} has shape {output.ShapeString}, expected {Shape.Format(shape)}");
        if (output.DType != type)
            throw new ArgumentException($"{op}: output {name} is {output.DType.Name()}, expected {type.Name()}");
    }
}
