//! Compile `proto/message.proto` with protox (a Rust protobuf compiler), so building needs no
//! `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/message.proto");
    let fds = protox::compile(["proto/message.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
