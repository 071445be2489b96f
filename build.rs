// `sqlx::migrate!` embeds `migrations/` when the crate compiles; without this line, adding or
// editing a migration does not rebuild the crate and the binary keeps the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
