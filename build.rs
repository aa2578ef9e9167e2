fn main() {
    // torch-sys links libtorch but gives binaries no rpath; without one every binary and
    // test dies with "libtorch_cpu.so: cannot open shared object file".
    // First the folder install.sh copies the libraries to (<prefix>/lib/saliency beside
    // <prefix>/bin), so an installed binary outlives the checkout; then the checkout's libtorch.
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib/saliency");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        // Nothing references libtorch_cuda.so directly, so --as-needed would drop it and
        // tch::Cuda::is_available() would be false even on a GPU machine.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
