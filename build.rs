// 1. Gives every binary and test an rpath to libtorch's lib folder, so `minima`
//    runs without LD_LIBRARY_PATH. torch-sys (a direct dependency for this reason)
//    exports the folder it linked against as DEP_TCH_LIBTORCH_LIB.
// 2. Records the source commit, written into every run's config.json.
// 3. Compiles the libtorch calls tch does not bind — src/train/autocast_shim.cpp
//    (the autocast dtype and CPU switches) and src/train/sgd_shim.cpp (the
//    multi-tensor SGD update), src/models/pool_relu/shim.cpp (the fused pool
//    and ReLU's autograd node), src/models/batch_norm/shim.cpp (the
//    channels-last batch norm's), src/models/stem_conv/shim.cpp (the first
//    convolution's), and src/models/shim.cpp (libtorch's
//    intra-op threads for the models' kernels, hence OpenMP) — against the
//    headers of the libtorch torch-sys links.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_INCLUDE");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys exports DEP_TCH_LIBTORCH_LIB, the libtorch folder it links against");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let include = std::env::var("LIBTORCH_INCLUDE")
        .map(|i| PathBuf::from(i).join("include"))
        .unwrap_or_else(|_| PathBuf::from(&lib).join("../include"));
    let shims = [
        "src/train/autocast_shim.cpp",
        "src/train/sgd_shim.cpp",
        "src/models/pool_relu/shim.cpp",
        "src/models/batch_norm/shim.cpp",
        "src/models/stem_conv/shim.cpp",
        "src/models/shim.cpp",
    ];
    println!("cargo:rerun-if-changed=src/models/shim.h");
    for shim in shims {
        println!("cargo:rerun-if-changed={shim}");
    }
    cc::Build::new()
        .cpp(true)
        .std("c++20")
        // A system include: libtorch's own headers' warnings are not ours to fix.
        .flag("-isystem")
        .flag(&include)
        .flag("-fopenmp")
        .files(shims)
        .compile("minima_shims");
    link_openmp(&lib);
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
        commit.push_str("-dirty");
    }
    println!("cargo:rustc-env=MINIMA_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}

/// Links the OpenMP runtime libtorch runs its intra-op threads on, so that
/// shim.cpp's parallel regions join those threads: the copy libtorch ships
/// (the wheels' torch/lib/libgomp.so.1), else the system's, which a libtorch
/// without its own copy links.
fn link_openmp(lib: &str) {
    let shipped = PathBuf::from(lib).join("libgomp.so.1");
    if shipped.exists() {
        println!("cargo:rustc-link-arg={}", shipped.display());
    } else {
        println!("cargo:rustc-link-lib=gomp");
    }
}
