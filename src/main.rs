mod zone;
fn main() {}
