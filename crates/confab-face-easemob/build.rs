//! Compile `proto/msync.proto` (the web SDK's msync schema) with protox (a Rust protobuf
//! compiler), so building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/msync.proto");
    let fds = protox::compile(["proto/msync.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
