namespace Mdm.Kernels;

/// <summary>
/// One (batched) matrix product for <see cref="Backend.Gemm"/>: for each batch index i,
/// C_i[M,N] = op(A_i)[M,K] · op(B_i)[K,N] (+ bias[N] on every row), all matrices contiguous and row-major.
/// op(A) = A (stored [M,K]) or, with <see cref="TransA"/>, Aᵀ (A stored [K,M]); likewise B ([K,N] or [N,K]).
/// A_i starts at element i·StrideA of a (0 broadcasts one matrix over the batch), and so on.
/// With <see cref="SumBatch"/> the C_i are summed into a single C (the backward of a batch broadcast).
/// </summary>
public readonly record struct MatmulDesc(int Batch, int M, int N, int K, bool TransA, bool TransB,
    long StrideA, long StrideB, long StrideC, bool SumBatch)
{
    /// <summary>Row length of A as stored.</summary>
    public int Lda => TransA ? M : K;
    /// <summary>Row length of B as stored.</summary>
    public int Ldb => TransB ? K : N;
    public int Ldc => N;
    /// <summary>Number of C matrices written: 1 when the batch is summed.</summary>
    public int OutBatch => SumBatch ? 1 : Batch;
}

public abstract partial class Backend
{
    /// <summary>
    /// C = op(A)·op(B) (+ bias) per <paramref name="d"/>. a and b are both F32 or both BF16 (widened exactly, products
    /// accumulated in f32); bias is F32; c is F32, or BF16 (the f32 result, bias included, rounded once to nearest
    /// even). Every element of c is written (zero when K = 0). Unchecked: use Ops.MatMul/Linear.
    /// </summary>
    protected internal abstract void Gemm(Tensor a, Tensor b, Tensor c, Tensor? bias, in MatmulDesc d);
}
