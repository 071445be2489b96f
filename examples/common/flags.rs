//! The benchmarks' command lines: `--name N` pairs, every value a number, each name one the
//! benchmark knows (with its default).

use anyhow::Context;

/// Reads `--name N` pairs from the command line into `flags` (name, value), whose values are
/// the defaults; an unknown name or a value that is not a number is an error naming them.
pub fn parse(flags: &mut [(&str, usize)]) -> anyhow::Result<()> {
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: usize = it
            .next()
            .context("a value after each flag")?
            .parse()
            .context("a number")?;
        let known: Vec<&str> = flags.iter().map(|(name, _)| *name).collect();
        let slot = flags
            .iter_mut()
            .find(|(name, _)| *name == flag)
            .with_context(|| format!("unknown flag {flag} ({})", known.join(", ")))?;
        slot.1 = value;
    }
    Ok(())
}
