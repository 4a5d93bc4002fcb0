fn main() {
    imp_build::stamp()
}
