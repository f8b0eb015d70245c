using ILGPU;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

// Run(kernel, config, arguments...): launches a catalogued kernel on the default stream. The argument types come from
// the kernel method itself, so no launcher type is ever written by hand; the launcher was made at start-up.
public sealed partial class IlgpuBackend
{
    public void Run<T1>(Action<T1> kernel, KernelConfig config, T1 a1) where T1 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1>)Launcher(kernel))(accelerator.DefaultStream, config, a1);
    public void Run<T1, T2>(Action<T1, T2> kernel, KernelConfig config, T1 a1, T2 a2) where T1 : struct where T2 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2);
    public void Run<T1, T2, T3>(Action<T1, T2, T3> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3) where T1 : struct where T2 : struct where T3 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3);
    public void Run<T1, T2, T3, T4>(Action<T1, T2, T3, T4> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4) where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4);
    public void Run<T1, T2, T3, T4, T5>(Action<T1, T2, T3, T4, T5> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5);
    public void Run<T1, T2, T3, T4, T5, T6>(Action<T1, T2, T3, T4, T5, T6> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6);
    public void Run<T1, T2, T3, T4, T5, T6, T7>(Action<T1, T2, T3, T4, T5, T6, T7> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7);
    public void Run<T1, T2, T3, T4, T5, T6, T7, T8>(Action<T1, T2, T3, T4, T5, T6, T7, T8> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8);
    public void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9);
    public void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);
    public void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
    public void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11, T12 a12) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
    public void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11, T12 a12, T13 a13) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13);
    public void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>(Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11, T12 a12, T13 a13, T14 a14) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct where T14 : struct =>
        ((Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>)Launcher(kernel))(accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14);
}
