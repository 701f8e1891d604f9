fn main() {
    println!("rstuf-worker {}", env!("CARGO_PKG_VERSION"));
}
